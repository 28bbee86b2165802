//! SMS PDU codec (3GPP TS 23.040 / 23.038), sans-IO.
