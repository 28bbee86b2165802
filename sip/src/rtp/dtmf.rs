//! RFC 4733 telephone-events (DTMF over RTP): the sender's packet schedule (a start
//! packet with the marker, updates every 20 ms with a growing duration, three end
//! packets for redundancy) and the receiver's duplicate suppression (one digit per
//! event timestamp, however many updates and end packets arrive).

use std::time::Duration;

/// The event code of a DTMF digit (RFC 4733 §3.2).
pub fn event_code(digit: char) -> Option<u8> {
    Some(match digit {
        '0'..='9' => u8::try_from(u32::from(digit) - u32::from('0')).ok()?,
        '*' => 10,
        '#' => 11,
        'A'..='D' => u8::try_from(u32::from(digit) - u32::from('A') + 12).ok()?,
        'a'..='d' => u8::try_from(u32::from(digit) - u32::from('a') + 12).ok()?,
        _ => return None,
    })
}

/// The digit of an event code.
pub fn digit_of(code: u8) -> Option<char> {
    b"0123456789*#ABCD"
        .get(usize::from(code))
        .map(|&b| char::from(b))
}

/// One telephone-event payload (4 bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventPayload {
    /// Event code.
    pub event: u8,
    /// End bit.
    pub end: bool,
    /// Volume (dBm0 below 0, 0–63).
    pub volume: u8,
    /// Duration in timestamp units.
    pub duration: u16,
}

impl EventPayload {
    /// Parses the first 4 bytes.
    pub fn parse(b: &[u8]) -> Option<Self> {
        let b = b.get(..4)?;
        Some(Self {
            event: b[0],
            end: b[1] & 0x80 != 0,
            volume: b[1] & 0x3f,
            duration: u16::from_be_bytes([b[2], b[3]]),
        })
    }

    /// Serializes.
    pub fn bytes(&self) -> [u8; 4] {
        let d = self.duration.to_be_bytes();
        [
            self.event,
            (u8::from(self.end) << 7) | (self.volume & 0x3f),
            d[0],
            d[1],
        ]
    }
}

/// A packet the sender wants out: (marker, timestamp offset from the event start,
/// payload). The session stamps sequence numbers and the base timestamp.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventPacket {
    /// Marker (first packet of the event).
    pub marker: bool,
    /// Payload.
    pub payload: EventPayload,
}

/// Sends one digit as a series of packets, one per 20 ms tick.
#[derive(Debug, Clone)]
pub struct DtmfSender {
    event: u8,
    total: u16,
    elapsed: u16,
    ends_left: u8,
    started: bool,
}

impl DtmfSender {
    /// A sender for `digit` lasting `duration` (clamped to 40 ms–5 s); `None` for a
    /// character that is not a DTMF digit.
    pub fn new(digit: char, duration: Duration) -> Option<Self> {
        let ms = duration.as_millis().clamp(40, 5000);
        let total = u16::try_from(ms * 8).unwrap_or(u16::MAX);
        Some(Self {
            event: event_code(digit)?,
            total,
            elapsed: 0,
            ends_left: 3,
            started: false,
        })
    }

    /// The packet for the next 20 ms tick, or `None` when the event is over.
    pub fn tick(&mut self) -> Option<EventPacket> {
        if self.ends_left == 0 {
            return None;
        }
        let marker = !self.started;
        self.started = true;
        self.elapsed = self.elapsed.saturating_add(160).min(self.total);
        let end = self.elapsed >= self.total;
        if end {
            self.ends_left -= 1;
        }
        Some(EventPacket {
            marker,
            payload: EventPayload {
                event: self.event,
                end,
                volume: 10,
                duration: self.elapsed,
            },
        })
    }

    /// Whether all packets (including the three end packets) went out.
    pub fn done(&self) -> bool {
        self.ends_left == 0
    }
}

/// Receives telephone-events: one digit per event (keyed by RTP timestamp), reported at
/// the first packet seen so a lost start packet still yields the digit.
#[derive(Debug, Default, Clone)]
pub struct DtmfReceiver {
    last_ts: Option<u32>,
}

impl DtmfReceiver {
    /// Feeds one telephone-event packet; returns the digit when it starts a new event.
    pub fn on_packet(&mut self, timestamp: u32, payload: &[u8]) -> Option<char> {
        let ev = EventPayload::parse(payload)?;
        if self.last_ts == Some(timestamp) {
            return None;
        }
        self.last_ts = Some(timestamp);
        digit_of(ev.event)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sender_schedule_has_marker_growing_duration_and_three_ends() {
        let mut s = DtmfSender::new('5', Duration::from_millis(100)).unwrap();
        let mut pkts = Vec::new();
        while let Some(p) = s.tick() {
            pkts.push(p);
        }
        assert!(s.done());
        assert!(pkts[0].marker && pkts[1..].iter().all(|p| !p.marker));
        let durs: Vec<u16> = pkts.iter().map(|p| p.payload.duration).collect();
        assert_eq!(durs, vec![160, 320, 480, 640, 800, 800, 800]);
        assert_eq!(pkts.iter().filter(|p| p.payload.end).count(), 3);
        assert!(pkts.iter().all(|p| p.payload.event == 5));
        assert!(DtmfSender::new('x', Duration::from_millis(100)).is_none());
    }

    #[test]
    fn receiver_suppresses_duplicates_and_ends() {
        let mut r = DtmfReceiver::default();
        let mut s = DtmfSender::new('#', Duration::from_millis(60)).unwrap();
        let mut digits = Vec::new();
        while let Some(p) = s.tick() {
            // Every packet twice, as a lossy path with retransmitting middleboxes might.
            for _ in 0..2 {
                digits.extend(r.on_packet(1000, &p.payload.bytes()));
            }
        }
        assert_eq!(digits, vec!['#']);
        // The next press has a new timestamp; starting with an end packet still counts.
        let end = EventPayload {
            event: 1,
            end: true,
            volume: 10,
            duration: 800,
        };
        assert_eq!(r.on_packet(5000, &end.bytes()), Some('1'));
        assert_eq!(r.on_packet(5000, &end.bytes()), None);
        assert_eq!(r.on_packet(9000, &[1, 2]), None);
        for (d, c) in "0123456789*#ABCD".chars().enumerate() {
            assert_eq!(event_code(c), Some(u8::try_from(d).unwrap()));
            assert_eq!(digit_of(u8::try_from(d).unwrap()), Some(c));
        }
    }
}
