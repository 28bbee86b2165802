//! Country data for analog ports: the DAA's DC/AC termination and ringer settings (FXO), the
//! ProSLIC's ringing frequency and two-wire impedance (FXS), the tone zone of the call-progress
//! tone table, and the caller-ID signalling the country uses.
//!
//! The termination fields are those of DAHDI's `fxo_modes.h` table (ohs, ohs2, rz, rt, ilim,
//! dcv, mini, acim); the FXS impedance is the DAA's AC impedance mapped to the ProSLIC's TISS
//! code the way DAHDI's `fxshonormode` does. One entry per tone zone of `flowgate-dsp`'s table
//! plus the pan-European TBR21 profile.

use crate::si321x::RingFrequency;

/// The DAA settings that vary by country.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DaaTermination {
    /// On-hook speed (register 16 bit 6).
    pub ohs: bool,
    /// On-hook speed 2 (register 31 bit 3).
    pub ohs2: bool,
    /// Ringer impedance (register 16 bit 1).
    pub rz: bool,
    /// Ringer threshold (register 16 bit 0).
    pub rt: bool,
    /// Current limitation (register 26 bit 1; TBR21's 60 mA limit).
    pub ilim: bool,
    /// Tip/ring voltage adjust, 0…3 (register 26 bits 7:6).
    pub dcv: u8,
    /// Minimum operational loop current, 0…3 (register 26 bits 5:4).
    pub mini: u8,
    /// AC termination impedance code, 0…15 (register 30).
    pub acim: u8,
}

impl DaaTermination {
    /// Register 16: OHS, RZ, RT.
    #[must_use]
    pub const fn reg16(&self) -> u8 {
        (self.ohs as u8) << 6 | (self.rz as u8) << 1 | self.rt as u8
    }

    /// Register 26: DCV, MINI, ILIM.
    #[must_use]
    pub const fn reg26(&self) -> u8 {
        (self.dcv & 3) << 6 | (self.mini & 3) << 4 | (self.ilim as u8) << 1
    }

    /// The ProSLIC two-wire impedance (TISS) matching this AC termination.
    #[must_use]
    pub const fn fxs_impedance(&self) -> u8 {
        match self.acim {
            1 => 0x1,
            2 => 0x4,
            3 => 0x5,
            4 => 0x7,
            7 => 0x6,
            11 => 0x2,
            13 => 0x3,
            _ => 0x0,
        }
    }
}

/// How caller ID is signalled in a country.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CidSignalling {
    /// Bell 202 FSK, MDMF, between the first and second ring (GR-30 type 1).
    Bell,
    /// ETSI V.23 FSK (EN 300 659), after a line reversal and DT-AS, before the first ring.
    EtsiPreRing,
    /// ETSI V.23 FSK after the first ring (UK BT SIN227 style uses DT-AS; many networks
    /// send it after the first ring like Bell).
    EtsiAfterRing,
    /// DTMF CLIP before the first ring, after a line reversal (EN 300 659-1 annex).
    Dtmf,
}

/// Battery (line voltage) supervision thresholds on FXO.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BatteryThresholds {
    /// |LVS| at or below this (V) means no battery.
    pub threshold_v: u8,
    /// Battery lost for this long (ms) is a far-end disconnect.
    pub debounce_ms: u16,
    /// Battery lost for this long (ms) raises a line alarm.
    pub alarm_ms: u16,
}

/// All country data of an analog port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Country {
    /// Code used in configuration (`us`, `de`, … and `tbr21`).
    pub code: &'static str,
    /// Name.
    pub name: &'static str,
    /// The zone of the call-progress tone table (ring cadence, dial/busy/congestion tones).
    pub tone_zone: &'static str,
    /// DAA termination.
    pub daa: DaaTermination,
    /// FXS ringing frequency.
    pub ring_frequency: RingFrequency,
    /// Caller-ID signalling.
    pub cid: CidSignalling,
    /// DTMF CLIP layout where `cid` is [`CidSignalling::Dtmf`].
    pub dtmf_clip: crate::cid::dtmf::Variant,
    /// Battery supervision.
    pub battery: BatteryThresholds,
}

const BATTERY: BatteryThresholds = BatteryThresholds {
    threshold_v: 3,
    debounce_ms: 64,
    alarm_ms: 1000,
};

const FCC: DaaTermination = DaaTermination {
    ohs: false,
    ohs2: false,
    rz: false,
    rt: true,
    ilim: false,
    dcv: 3,
    mini: 0,
    acim: 0,
};

const fn tbr21(acim: u8, ohs2: bool) -> DaaTermination {
    DaaTermination {
        ohs: false,
        ohs2,
        rz: false,
        rt: false,
        ilim: true,
        dcv: 3,
        mini: 0,
        acim,
    }
}

const fn plain(dcv: u8, mini: u8, acim: u8) -> DaaTermination {
    DaaTermination {
        ohs: false,
        ohs2: false,
        rz: false,
        rt: false,
        ilim: false,
        dcv,
        mini,
        acim,
    }
}

const fn entry(
    code: &'static str,
    name: &'static str,
    tone_zone: &'static str,
    daa: DaaTermination,
    ring_frequency: RingFrequency,
    cid: CidSignalling,
) -> Country {
    Country {
        code,
        name,
        tone_zone,
        daa,
        ring_frequency,
        cid,
        dtmf_clip: crate::cid::dtmf::Variant::V1,
        battery: BATTERY,
    }
}

use CidSignalling as C;
use RingFrequency::{Hz20, Hz25};

/// The built-in countries.
pub const COUNTRIES: [Country; 16] = [
    entry("us", "United States, Canada", "us", FCC, Hz20, C::Bell),
    entry(
        "tbr21",
        "TBR21 (pan-European)",
        "de",
        tbr21(2, false),
        Hz25,
        C::EtsiPreRing,
    ),
    entry(
        "uk",
        "United Kingdom",
        "uk",
        tbr21(5, true),
        Hz25,
        C::EtsiPreRing,
    ),
    entry(
        "de",
        "Germany",
        "de",
        tbr21(3, true),
        Hz25,
        C::EtsiAfterRing,
    ),
    entry("fr", "France", "fr", tbr21(2, true), Hz25, C::EtsiPreRing),
    entry("nl", "Netherlands", "nl", tbr21(2, true), Hz25, C::Dtmf),
    entry("dk", "Denmark", "dk", tbr21(2, true), Hz25, C::Dtmf),
    entry("se", "Sweden", "se", tbr21(2, true), Hz25, C::Dtmf),
    entry("es", "Spain", "es", tbr21(2, true), Hz25, C::EtsiPreRing),
    entry("it", "Italy", "it", tbr21(2, true), Hz25, C::EtsiPreRing),
    entry("in", "India", "in", plain(3, 0, 4), Hz25, C::Dtmf),
    Country {
        daa: DaaTermination {
            ohs: true,
            ohs2: false,
            rz: false,
            rt: false,
            ilim: false,
            dcv: 0,
            mini: 3,
            acim: 3,
        },
        ..entry("au", "Australia", "au", FCC, Hz25, C::EtsiAfterRing)
    },
    entry("jp", "Japan", "jp", plain(0, 3, 0), Hz20, C::EtsiPreRing),
    entry("cn", "China", "cn", plain(0, 3, 15), Hz25, C::EtsiPreRing),
    entry("br", "Brazil", "br", plain(0, 3, 0), Hz25, C::Dtmf),
    Country {
        daa: DaaTermination {
            ohs: true,
            ohs2: false,
            rz: true,
            rt: false,
            ilim: false,
            dcv: 3,
            mini: 0,
            acim: 3,
        },
        ..entry("za", "South Africa", "za", FCC, Hz25, C::EtsiAfterRing)
    },
];

/// Looks a country up by code (case-insensitive).
#[must_use]
pub fn country(code: &str) -> Option<&'static Country> {
    COUNTRIES.iter().find(|c| c.code.eq_ignore_ascii_case(code))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn register_packing_matches_the_dahdi_formulas() {
        // FCC: rt=1, dcv=3 → reg16 0x01, reg26 0xC0.
        let us = country("US").expect("us");
        assert_eq!(us.daa.reg16(), 0x01);
        assert_eq!(us.daa.reg26(), 0xC0);
        // TBR21: ilim=1, dcv=3, acim=2 → reg26 0xC2.
        let eu = country("tbr21").expect("tbr21");
        assert_eq!(eu.daa.reg26(), 0xC2);
        assert_eq!(eu.daa.acim, 2);
        assert_eq!(eu.daa.fxs_impedance(), 4);
        let za = country("za").expect("za");
        assert_eq!(za.daa.reg16(), 0x42);
    }

    #[test]
    fn codes_are_unique() {
        for (i, a) in COUNTRIES.iter().enumerate() {
            for b in &COUNTRIES[i + 1..] {
                assert_ne!(a.code, b.code);
            }
        }
        assert!(country("xx").is_none());
    }
}
