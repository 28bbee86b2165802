//! The exact SPI transactions of both drivers, pinned with embedded-hal-mock. Register numbers
//! and values are restated here from the analog reference (DAHDI `wctdm.c`), not taken from the
//! driver's tables, so a wrong table entry fails these tests.

use embedded_hal_mock::eh1::MockError;
use embedded_hal_mock::eh1::delay::NoopDelay;
use embedded_hal_mock::eh1::digital::{Mock as PinMock, State, Transaction as PinT};
use embedded_hal_mock::eh1::spi::{Mock as SpiMock, Transaction as T};
use flowgate_analog::Error;
use flowgate_analog::country::country;
use flowgate_analog::si321x::regs::Linefeed;
use flowgate_analog::si321x::{FxsChipConfig, Part, Si321x};
use flowgate_analog::si3050::{FxoChipConfig, LineSide, Si3050};

/// ProSLIC direct registers (decimal, as in the Si3210 datasheet / DAHDI proslic.h).
mod pr {
    pub(crate) const ID: u8 = 0;
    pub(crate) const PCM_MODE: u8 = 1;
    pub(crate) const PCM_TX_LO: u8 = 2;
    pub(crate) const PCM_TX_HI: u8 = 3;
    pub(crate) const PCM_RX_LO: u8 = 4;
    pub(crate) const PCM_RX_HI: u8 = 5;
    pub(crate) const LOOPBACK: u8 = 8;
    pub(crate) const HYBRID: u8 = 11;
    pub(crate) const PWR_DOWN1: u8 = 14;
    pub(crate) const IRQ_STATUS1: u8 = 18;
    pub(crate) const IRQ_STATUS2: u8 = 19;
    pub(crate) const IRQ_STATUS3: u8 = 20;
    pub(crate) const IRQ_EN1: u8 = 21;
    pub(crate) const IRQ_EN2: u8 = 22;
    pub(crate) const IRQ_EN3: u8 = 23;
    pub(crate) const IDA_LO: u8 = 28;
    pub(crate) const IDA_HI: u8 = 29;
    pub(crate) const IAA: u8 = 30;
    pub(crate) const I_STATUS: u8 = 31;
    pub(crate) const RING_OSC_CTL: u8 = 34;
    pub(crate) const LINE_STATE: u8 = 64;
    pub(crate) const BAT_FEED: u8 = 66;
    pub(crate) const AUTO_STATE: u8 = 67;
    pub(crate) const LOOP_STAT: u8 = 68;
    pub(crate) const LOOP_I_LIMIT: u8 = 71;
    pub(crate) const COMMON_V: u8 = 73;
    pub(crate) const BAT_V_HI: u8 = 74;
    pub(crate) const LOOP_I_SENSE: u8 = 79;
    pub(crate) const TIP_V: u8 = 80;
    pub(crate) const RING_V: u8 = 81;
    pub(crate) const BAT_V_SENSE: u8 = 82;
    pub(crate) const DCDC_PWM: u8 = 92;
    pub(crate) const DCDC: u8 = 93;
    pub(crate) const CALIBR1: u8 = 96;
    pub(crate) const CALIBR2: u8 = 97;
    pub(crate) const DC_PEAK_CAL: u8 = 107;
    pub(crate) const REV_C: u8 = 108;
}

/// Si3215 indirect registers at their Si3215 addresses with DAHDI's initial values
/// (`indirect_regs[]`, the `altaddr` column; DCDC_XTRA does not exist on the Si3215).
const SI3215_INDIRECT: [(u8, u16); 27] = [
    (0, 0x7B30),  // OSC1_COEF
    (1, 0x0063),  // OSC1X
    (2, 0x0000),  // OSC1Y
    (3, 0x7870),  // OSC2_COEF
    (4, 0x007D),  // OSC2X
    (5, 0x0000),  // OSC2Y
    (6, 0x0000),  // RING_V_OFF
    (7, 0x7EF0),  // RING_OSC
    (8, 0x0160),  // RING_X
    (9, 0x0000),  // RING_Y
    (13, 0x2000), // RECV_DIGITAL_GAIN
    (14, 0x4000), // XMIT_DIGITAL_GAIN
    (15, 0x1000), // LOOP_CLOSE_TRES
    (16, 0x3600), // RING_TRIP_TRES
    (17, 0x1000), // COMMON_MIN_TRES
    (18, 0x0200), // COMMON_MAX_TRES
    (19, 0x07C0), // PWR_ALARM_Q1Q2
    (20, 0x2600), // PWR_ALARM_Q3Q4
    (21, 0x1B80), // PWR_ALARM_Q5Q6
    (22, 0x8000), // LOOP_CLOSURE_FILTER
    (23, 0x0320), // RING_TRIP_FILTER
    (24, 0x008C), // TERM_LP_POLE_Q1Q2
    (25, 0x0100), // TERM_LP_POLE_Q3Q4
    (26, 0x0010), // TERM_LP_POLE_Q5Q6
    (27, 0x0C00), // CM_BIAS_RINGING
    (64, 0x0C00), // DCDC_MIN_V
    (66, 0x1000), // LOOP_CLOSE_TRES_LOW
];

/// One byte in its own chip-select frame.
fn out(b: u8) -> [T<u8>; 3] {
    [
        T::transaction_start(),
        T::write_vec(vec![b]),
        T::transaction_end(),
    ]
}

fn inp(b: u8) -> [T<u8>; 3] {
    [
        T::transaction_start(),
        T::read_vec(vec![b]),
        T::transaction_end(),
    ]
}

#[derive(Default)]
struct Slic(Vec<T<u8>>);

impl Slic {
    fn w(&mut self, reg: u8, v: u8) -> &mut Self {
        self.0.extend(out(reg & 0x7F));
        self.0.extend(out(v));
        self
    }
    fn r(&mut self, reg: u8, v: u8) -> &mut Self {
        self.0.extend(out(reg | 0x80));
        self.0.extend(inp(v));
        self
    }
    fn iw(&mut self, addr: u8, v: u16) -> &mut Self {
        self.r(pr::I_STATUS, 0)
            .w(pr::IDA_LO, (v & 0xFF) as u8)
            .w(pr::IDA_HI, (v >> 8) as u8)
            .w(pr::IAA, addr)
    }
    fn ir(&mut self, addr: u8, v: u16) -> &mut Self {
        self.r(pr::I_STATUS, 0)
            .w(pr::IAA, addr)
            .r(pr::I_STATUS, 0)
            .r(pr::IDA_LO, (v & 0xFF) as u8)
            .r(pr::IDA_HI, (v >> 8) as u8)
    }
    fn power_up(&mut self) -> &mut Self {
        self.w(pr::DCDC_PWM, 0xFF)
            .w(pr::PWR_DOWN1, 0x00)
            .r(pr::BAT_V_SENSE, 0x40) // not yet: poll again after 10 ms
            .r(pr::BAT_V_SENSE, 0xC8)
            .w(pr::LOOP_I_LIMIT, 0x00) // 20 mA
            .w(pr::DCDC, 0x19)
    }
}

fn reset_pin() -> PinMock {
    PinMock::new(&[PinT::set(State::Low), PinT::set(State::High)])
}

fn si3215_init_sequence() -> Vec<T<u8>> {
    let mut s = Slic::default();
    s.r(pr::ID, 0x03).r(pr::PCM_MODE, 0x80); // revision 3, bit 7 = Si3215
    s.r(pr::LOOPBACK, 0x02)
        .r(pr::LINE_STATE, 0x00)
        .r(pr::HYBRID, 0x33);
    s.w(pr::PWR_DOWN1, 0x10);
    for (a, v) in SI3215_INDIRECT {
        s.iw(a, v);
    }
    s.w(pr::LOOPBACK, 0)
        .w(pr::REV_C, 0xEB)
        .w(pr::AUTO_STATE, 0x07)
        .w(pr::BAT_FEED, 0x01);
    // Save and flush the five filters (indirect 35..39 = Si3215 22..26).
    for (a, v) in [
        (22, 0x8000),
        (23, 0x0320),
        (24, 0x008C),
        (25, 0x0100),
        (26, 0x0010),
    ] {
        s.ir(a, v).iw(a, 0x8000);
    }
    s.power_up();
    // Leak test: converter off, VBAT must stay above 6 for 500 ms (10 polls of 50 ms).
    s.w(pr::LINE_STATE, 0).w(pr::PWR_DOWN1, 0x10);
    for i in 0..10u8 {
        s.r(pr::BAT_V_SENSE, 0xC8 - i);
    }
    s.power_up();
    s.w(pr::CALIBR2, 0x1F)
        .w(pr::CALIBR1, 0x5F)
        .r(pr::CALIBR1, 0x5F)
        .r(pr::CALIBR1, 0x00);
    s.w(pr::DCDC, 0x99).r(pr::DC_PEAK_CAL, 0x08);
    for i in 0..12u8 {
        s.r(pr::CALIBR1 + i, 0x10 + i);
    }
    for (a, v) in [
        (22, 0x8000),
        (23, 0x0320),
        (24, 0x008C),
        (25, 0x0100),
        (26, 0x0010),
    ] {
        s.iw(a, v);
    }
    for (a, v) in SI3215_INDIRECT {
        s.ir(a, v);
    }
    s.w(pr::PCM_MODE, 0x28)
        .w(pr::PCM_TX_LO, 0)
        .w(pr::PCM_TX_HI, 0)
        .w(pr::PCM_RX_LO, 0)
        .w(pr::PCM_RX_HI, 0);
    s.w(pr::IRQ_STATUS1, 0xFF)
        .w(pr::IRQ_STATUS2, 0xFF)
        .w(pr::IRQ_STATUS3, 0xFF);
    s.w(pr::COMMON_V, 0x04);
    // Ring generator, 20 Hz normal: RNGY 0, ring trip 0x3600, VBATH 0x32, RCO 0x7EFE, RNGX 0x160.
    s.w(pr::RING_OSC_CTL, 0)
        .iw(9, 0)
        .iw(16, 0x3600)
        .w(pr::BAT_V_HI, 0x32)
        .iw(7, 0x7EFE)
        .iw(8, 0x0160);
    s.w(pr::IRQ_EN1, 0).w(pr::IRQ_EN2, 0xFF).w(pr::IRQ_EN3, 0);
    s.w(pr::LINE_STATE, 0x01); // forward active
    s.0
}

#[test]
fn si3215_init_sequence_is_exact() {
    let mut spi = SpiMock::new(&si3215_init_sequence());
    let mut rst = reset_pin();
    let mut int = PinMock::new(&[]);
    let mut slic = Si321x::new(
        spi.clone(),
        rst.clone(),
        int.clone(),
        NoopDelay::new(),
        FxsChipConfig::new(Part::Si3215),
    );
    let info = slic.init().expect("init");
    assert_eq!(info.part, Part::Si3215);
    assert_eq!(info.revision, 3);
    assert_eq!(slic.linefeed(), Linefeed::ActiveFwd);
    assert_eq!(slic.calibration().map(|c| c[11]), Some(0x1B));
    let _ = slic.destroy();
    spi.done();
    rst.done();
    int.done();
}

#[test]
fn si3215_refuses_another_part_and_no_chip() {
    // Configured for an Si3210, the chip says Si3215: stop after identification.
    let mut s = Slic::default();
    s.r(pr::ID, 0x03).r(pr::PCM_MODE, 0x80);
    let mut spi = SpiMock::new(&s.0);
    let mut rst = reset_pin();
    let mut idle = PinMock::new(&[]);
    let mut slic = Si321x::new(
        spi.clone(),
        rst.clone(),
        idle.clone(),
        NoopDelay::new(),
        FxsChipConfig::new(Part::Si3210),
    );
    let err = slic.init().expect_err("wrong part");
    assert!(
        matches!(
            err,
            Error::WrongChip {
                expected: "Si3210",
                found: "Si3215",
                id: 0x03
            }
        ),
        "{err:?}"
    );
    spi.done();
    rst.done();
    idle.done();

    let mut s = Slic::default();
    s.r(pr::ID, 0xFF);
    let mut spi = SpiMock::new(&s.0);
    let mut rst = reset_pin();
    let mut idle = PinMock::new(&[]);
    let mut slic = Si321x::new(
        spi.clone(),
        rst.clone(),
        idle.clone(),
        NoopDelay::new(),
        FxsChipConfig::new(Part::Si3215),
    );
    assert!(matches!(slic.init(), Err(Error::NoChip { id: 0xFF })));
    spi.done();
    rst.done();
    idle.done();
}

#[test]
fn si3215_sanity_failure_and_pin_errors_are_reported() {
    let mut s = Slic::default();
    s.r(pr::ID, 0x03).r(pr::PCM_MODE, 0x80);
    s.r(pr::LOOPBACK, 0x02)
        .r(pr::LINE_STATE, 0x00)
        .r(pr::HYBRID, 0x34);
    let mut spi = SpiMock::new(&s.0);
    let mut rst = reset_pin();
    let mut idle = PinMock::new(&[]);
    let mut slic = Si321x::new(
        spi.clone(),
        rst.clone(),
        idle.clone(),
        NoopDelay::new(),
        FxsChipConfig::new(Part::Si3215),
    );
    assert_eq!(
        slic.init().expect_err("sanity"),
        Error::Sanity {
            register: "Hybrid",
            expected: 0x33,
            found: 0x34
        }
    );
    spi.done();
    rst.done();
    idle.done();

    // A failing reset line surfaces as Error::Pin, before any bus traffic.
    let mut spi = SpiMock::new(&[]);
    let mut rst = PinMock::new(&[
        PinT::set(State::Low).with_error(MockError::Io(std::io::ErrorKind::NotConnected))
    ]);
    let mut idle = PinMock::new(&[]);
    let mut slic = Si321x::new(
        spi.clone(),
        rst.clone(),
        idle.clone(),
        NoopDelay::new(),
        FxsChipConfig::new(Part::Si3215),
    );
    assert!(matches!(slic.init(), Err(Error::Pin(_))));
    spi.done();
    rst.done();
    idle.done();
}

#[test]
fn si3215_runtime_operations() {
    let mut s = Slic::default();
    s.w(pr::LINE_STATE, 0x04) // ringing
        .w(pr::LINE_STATE, 0x01) // forward active
        .w(pr::LINE_STATE, 0x05) // polarity reversed
        .w(pr::LINE_STATE, 0x06) // reverse on-hook transmission
        .r(pr::LOOP_STAT, 0x01)
        .r(pr::LINE_STATE, 0x66)
        .r(pr::TIP_V, 0x05)
        .r(pr::RING_V, 0xC0)
        .r(pr::BAT_V_SENSE, 0xC8)
        .r(pr::LOOP_I_SENSE, 23);
    let mut spi = SpiMock::new(&s.0);
    let mut slic = Si321x::new(
        spi.clone(),
        flowgate_analog::NoPin,
        flowgate_analog::NoPin,
        NoopDelay::new(),
        FxsChipConfig::new(Part::Si3215),
    );
    slic.ring().expect("ring");
    assert_eq!(
        slic.set_polarity(true),
        Err(Error::InvalidState {
            what: "polarity cannot change while ringing or with the line open"
        })
    );
    slic.set_linefeed(Linefeed::ActiveFwd).expect("active");
    slic.set_polarity(true).expect("reverse");
    slic.set_linefeed(Linefeed::OhtRev).expect("oht");
    assert!(slic.loop_closed().expect("hook"));
    assert_eq!(slic.linefeed_actual().expect("actual"), Linefeed::OhtRev);
    let m = slic.measurements().expect("measure");
    assert_eq!(
        (m.tip_mv, m.ring_mv, m.battery_mv, m.loop_current_raw),
        (1880, 72_192, 75_200, 23)
    );
    spi.done();
}

#[test]
fn si3215_power_alarm_restores_the_line_and_gives_up_after_ten() {
    let mut s = Slic::default();
    s.w(pr::LINE_STATE, 0x04); // ringing
    // Alarm: register 64 reads 0 (the chip opened the line); ringing is restored as active.
    s.r(pr::LOOPBACK, 0)
        .r(pr::IRQ_STATUS2, 0x04)
        .w(pr::IRQ_STATUS2, 0x04)
        .r(pr::LINE_STATE, 0x04)
        .w(pr::LINE_STATE, 0x01);
    for _ in 0..9 {
        s.r(pr::LOOPBACK, 0)
            .r(pr::IRQ_STATUS2, 0)
            .r(pr::LINE_STATE, 0x01)
            .w(pr::LINE_STATE, 0x01);
    }
    s.r(pr::LOOPBACK, 0)
        .r(pr::IRQ_STATUS2, 0)
        .r(pr::LINE_STATE, 0x01)
        .w(pr::LINE_STATE, 0x00);
    // A chip that reset itself: register 8 is back to 2.
    s.r(pr::LOOPBACK, 0x02);
    let mut spi = SpiMock::new(&s.0);
    let mut slic = Si321x::new(
        spi.clone(),
        flowgate_analog::NoPin,
        flowgate_analog::NoPin,
        NoopDelay::new(),
        FxsChipConfig::new(Part::Si3215),
    );
    slic.ring().expect("ring");
    let h = slic.check_health().expect("health");
    assert!(h.power_alarm && !h.gave_up);
    assert_eq!(h.thermal_alarms, 0x04);
    for _ in 0..9 {
        assert!(!slic.check_health().expect("health").gave_up);
    }
    let h = slic.check_health().expect("health");
    assert!(h.gave_up);
    assert_eq!(slic.linefeed(), Linefeed::Open);
    assert!(slic.check_health().expect("health").chip_reset);
    spi.done();
}

/// The DAA's three-byte framing.
#[derive(Default)]
struct Daa(Vec<T<u8>>);

impl Daa {
    fn w(&mut self, reg: u8, v: u8) -> &mut Self {
        self.0.extend(out(0x20));
        self.0.extend(out(reg));
        self.0.extend(out(v));
        self
    }
    fn r(&mut self, reg: u8, v: u8) -> &mut Self {
        self.0.extend(out(0x60));
        self.0.extend(out(reg));
        self.0.extend(inp(v));
        self
    }
}

/// Si3050 init for a country: (reg16, reg26, reg30, reg31) as DAHDI's fxo_modes give them.
fn si3050_init_sequence(reg16: u8, reg26: u8, reg30: u8, reg31: u8, line_side_id: u8) -> Daa {
    let mut s = Daa::default();
    s.r(2, 0x03); // sanity
    s.w(1, 0x80); // software reset
    s.w(33, 0x28); // PCM µ-law
    s.w(16, reg16);
    s.w(18, 0x00).w(24, 0x19); // half-wave ring detection (device defaults)
    s.w(26, reg26);
    s.w(30, reg30);
    s.w(31, reg31);
    s.w(34, 0).w(35, 0).w(36, 0).w(37, 0); // timeslot 0
    s.w(6, 0x00); // power the line side
    s.r(11, 0x00).r(11, line_side_id << 4 | 0x03); // isolation link comes up on the second poll
    s
}

fn si3050_after_link(mut s: Daa) -> Vec<T<u8>> {
    s.w(5, 0x08); // on-hook line monitor
    s.w(38, 0x10).w(40, 0x10).w(39, 0x10).w(41, 0x10); // 0 dB both ways
    s.w(3, 0x81); // interrupt on ring detect and polarity reversal
    s.0
}

#[test]
fn si3050_init_sequences_per_country_are_exact() {
    for (code, reg16, reg26, reg30, reg31) in [
        ("us", 0x01, 0xC0, 0x00, 0xA3),    // FCC: RT=1, DCV=3
        ("tbr21", 0x00, 0xC2, 0x02, 0xA3), // TBR21: ILIM=1, DCV=3, ACIM=2
        ("de", 0x00, 0xC2, 0x03, 0xAB),    // Germany: OHS2=1, ILIM=1, DCV=3, ACIM=3
        ("za", 0x42, 0xC0, 0x03, 0xA3),    // South Africa: OHS=1, RZ=1, DCV=3, ACIM=3
    ] {
        let seq = si3050_after_link(si3050_init_sequence(reg16, reg26, reg30, reg31, 0x3));
        let mut spi = SpiMock::new(&seq);
        let mut rst = reset_pin();
        let c = country(code).expect("country");
        let mut idle = PinMock::new(&[]);
        let mut daa = Si3050::new(
            spi.clone(),
            rst.clone(),
            idle.clone(),
            NoopDelay::new(),
            FxoChipConfig::new(LineSide::Si3019, c.daa),
        );
        assert_eq!(daa.init().expect(code), LineSide::Si3019);
        let _ = daa.destroy();
        spi.done();
        rst.done();
        idle.done();
    }
}

impl Daa {
    fn into_inner(self) -> Vec<T<u8>> {
        self.0
    }
}

#[test]
fn si3050_refuses_another_line_side_and_a_dead_link() {
    let seq = si3050_init_sequence(0x01, 0xC0, 0x00, 0xA3, 0x1).into_inner();
    let mut spi = SpiMock::new(&seq);
    let mut rst = reset_pin();
    let us = country("us").expect("us");
    let mut idle = PinMock::new(&[]);
    let mut daa = Si3050::new(
        spi.clone(),
        rst.clone(),
        idle.clone(),
        NoopDelay::new(),
        FxoChipConfig::new(LineSide::Si3019, us.daa),
    );
    assert!(matches!(
        daa.init(),
        Err(Error::WrongChip {
            expected: "Si3019",
            found: "Si3018",
            ..
        })
    ));
    spi.done();
    rst.done();
    idle.done();

    // The link never comes up: 2 s of polls every 100 ms, then IsoLinkDown.
    let mut s = si3050_init_sequence(0x01, 0xC0, 0x00, 0xA3, 0x3);
    s.0.truncate(s.0.len() - 9 * 2);
    for _ in 0..21 {
        s.r(11, 0x00);
    }
    let mut spi = SpiMock::new(&s.0);
    let mut rst = reset_pin();
    let mut idle = PinMock::new(&[]);
    let mut daa = Si3050::new(
        spi.clone(),
        rst.clone(),
        idle.clone(),
        NoopDelay::new(),
        FxoChipConfig::new(LineSide::Si3019, us.daa),
    );
    assert_eq!(daa.init(), Err(Error::IsoLinkDown));
    spi.done();
    rst.done();
    idle.done();
}

#[test]
fn si3050_hook_sample_and_interrupts() {
    let us = country("us").expect("us");
    let mut seq = si3050_after_link(si3050_init_sequence(0x01, 0xC0, 0x00, 0xA3, 0x3));
    let mut s = Daa::default();
    s.w(5, 0x09) // off-hook, monitor kept
        .r(5, 0x29) // RDTP set
        .r(29, 0xF8) // −8 V
        .r(28, 0x37) // LCS field 0x17
        .w(5, 0x08) // on-hook
        .r(4, 0x81)
        .w(4, 0x00);
    seq.extend(s.0);
    let mut spi = SpiMock::new(&seq);
    let mut rst = reset_pin();
    let mut int = PinMock::new(&[PinT::get(State::Low)]);
    let mut daa = Si3050::new(
        spi.clone(),
        rst.clone(),
        int.clone(),
        NoopDelay::new(),
        FxoChipConfig::new(LineSide::Si3019, us.daa),
    );
    daa.init().expect("init");
    daa.set_off_hook(true).expect("seize");
    assert!(daa.is_off_hook());
    let sample = daa.sample().expect("sample");
    assert!(sample.ring_positive && !sample.ring_negative);
    assert_eq!(sample.line_voltage, -8);
    assert_eq!(sample.loop_current_raw, 0x17);
    daa.set_off_hook(false).expect("release");
    assert!(daa.interrupt_pending().expect("pin"));
    assert_eq!(daa.take_interrupts().expect("irq"), 0x81);
    spi.done();
    rst.done();
    int.done();
}
