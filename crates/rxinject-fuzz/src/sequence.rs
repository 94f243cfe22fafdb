//! The targets that drive rxinject in the simulator: `ioctl_inputs` and `device_sequence`.
//! The driver is the one linked into this crate (`rxinject::DriverEntry`), held to the strict
//! reading (a warning fails as a violation does), and every run ends with the handles closed
//! and the driver unloaded: any rule broken or anything leaked is a crash.

use ndis_sim::{DeviceHandle, Irp, Sim, SimConfig, TestFrames};
use ndis_sys::*;
use rxinject_abi::capture::{self as cap, CaptureConfig};
use rxinject_abi::{self as abi, Pod};
use rxinject_bpf::Insn;

/// The fuzzer's bytes, consumed from the front; zeros once they run out.
struct Bytes<'a>(&'a [u8]);

impl Bytes<'_> {
    fn u8(&mut self) -> u8 {
        match self.0.split_first() {
            Some((&b, rest)) => {
                self.0 = rest;
                b
            }
            None => 0,
        }
    }

    fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.u8(), self.u8()])
    }

    fn u32(&mut self) -> u32 {
        u32::from_le_bytes([self.u8(), self.u8(), self.u8(), self.u8()])
    }

    fn take(&mut self, n: usize) -> &[u8] {
        let (a, b) = self.0.split_at(n.min(self.0.len()));
        self.0 = b;
        a
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

fn start() -> Sim {
    let mut cfg = SimConfig::default();
    cfg.strict.warnings_fail = true;
    let mut sim = Sim::new(cfg);
    assert_eq!(sim.load(rxinject::DriverEntry), STATUS_SUCCESS, "DriverEntry");
    sim
}

/// The run's verdict: every rule kept, nothing leaked.
fn finish(sim: Sim, what: &str) {
    sim.run_until_idle();
    let report = sim.finish();
    assert!(report.is_clean(), "{what}:\n{report}");
}

fn bind(sim: &Sim, h: &DeviceHandle<'_>, version: u32) -> NTSTATUS {
    let req = abi::BindRequest {
        abi_version: version,
        if_index: sim.adapter(0).config().if_index,
    };
    h.device_io_control(abi::IOCTL_RXINJECT_BIND, &req.to_vec(), 0)
        .status
}

/// `ioctl_inputs`: byte 0 says whether the handle is bound first and which IOCTL code (one
/// of the driver's, one with its method or access bits changed, or none of its); bytes 1-2
/// the output size; the rest is the input. Twice, on one handle.
pub fn ioctl_inputs(data: &[u8]) {
    let sim = start();
    let mut b = Bytes(data);
    if let Ok(h) = sim.open(abi::USER_PATH) {
        for _ in 0..2 {
            let pick = b.u8();
            if pick & 0x80 != 0 {
                let _ = bind(&sim, &h, abi::ABI_VERSION);
            }
            let codes = abi::IOCTLS;
            let base = codes[usize::from(pick) % codes.len()].1;
            let code = match (pick >> 4) & 3 {
                0 | 1 => base,
                2 => base ^ 3,           // another transfer method
                _ => base ^ (0x3 << 14), // other access bits
            };
            let out_len = usize::from(b.u16() % 2048);
            let in_len = usize::from(b.u16() % 2048);
            let input = b.take(in_len).to_vec();
            let irp = h.start_device_io_control(code, &input, out_len);
            sim.run_until_idle();
            if let Some(r) = h.poll(irp) {
                assert!(
                    r.output.len() <= out_len,
                    "{} bytes out of {out_len}",
                    r.output.len()
                );
            }
        }
        drop(h);
    }
    finish(sim, "ioctl_inputs");
}

/// A program for `SET_FILTER`: one of a few real ones, or up to 8 instructions of the bytes.
fn program(b: &mut Bytes<'_>) -> Vec<Insn> {
    const RET: u16 = 0x06;
    match b.u8() % 4 {
        // udp: ldh [12]; jeq #0x800; ldb [23]; jeq #17; ret #len; ret #0
        0 => vec![
            Insn::new(0x28, 0, 0, 12),
            Insn::new(0x15, 0, 3, 0x800),
            Insn::new(0x30, 0, 0, 23),
            Insn::new(0x15, 0, 1, 17),
            Insn::new(RET, 0, 0, 0x40000),
            Insn::new(RET, 0, 0, 0),
        ],
        1 => vec![Insn::new(RET, 0, 0, u32::from(b.u16()))],
        _ => {
            let n = usize::from(b.u8() % 8) + 1;
            (0..n)
                .map(|_| Insn::new(b.u16(), b.u8() % 4, b.u8() % 4, u32::from(b.u16())))
                .collect()
        }
    }
}

/// A capture configuration: valid most of the time, any bytes some of the time.
fn capture_config(b: &mut Bytes<'_>) -> CaptureConfig {
    let pick = b.u8();
    if pick & 0xE0 == 0xE0 {
        return CaptureConfig {
            ring_bytes: b.u32(),
            snaplen: b.u32(),
            directions: b.u32(),
            flags: b.u32(),
            min_bytes: b.u32(),
            timeout_ms: b.u32(),
            reserved: [0; 2],
        };
    }
    CaptureConfig {
        ring_bytes: [0, cap::MIN_RING_BYTES, 1 << 16, 1 << 20][usize::from(pick & 3)],
        snaplen: [0, 1, 64, 1514][usize::from((pick >> 2) & 3)],
        directions: u32::from(b.u8() % 4),
        flags: u32::from(b.u8())
            & (cap::CAPTURE_EXCLUDE_OWN
                | cap::CAPTURE_EXCLUDE_INJECTED
                | cap::CAPTURE_IMMEDIATE
                | cap::CAPTURE_NONBLOCK),
        min_bytes: u32::from(b.u16()),
        timeout_ms: u32::from(b.u8() % 4) * 5,
        reserved: [0; 2],
    }
}

/// A write buffer: 1 to 4 well-formed records (directions and flags of the bytes), or any
/// bytes.
fn write_buffer(b: &mut Bytes<'_>, frames: &mut TestFrames) -> Vec<u8> {
    let pick = b.u8();
    if pick & 0xC0 == 0xC0 {
        let n = usize::from(b.u8());
        return b.take(n).to_vec();
    }
    let mut batch = abi::write::Batch::new();
    for _ in 0..=(pick & 3) {
        let (direction, flags) = (b.u8() % 3, b.u8() & 3);
        let _ = batch.push(direction, flags, &frames.next_frame());
    }
    batch.as_bytes().to_vec()
}

/// `device_sequence`: up to 64 operations, one byte each (the operation, and the handle it
/// is on in its top bits) and the bytes it takes.
pub fn device_sequence(data: &[u8]) {
    let sim = start();
    let mut b = Bytes(data);
    let mut frames = TestFrames::new([0x02, 0x11, 0x22, 0x33, 0x44, 0x55], sim.adapter(0).config().mac);
    let mut handles: [Option<DeviceHandle<'_>>; 3] = [None, None, None];
    let mut pending: Vec<(usize, Irp)> = Vec::new();
    let mut ops = 0;
    while !b.is_empty() && ops < 64 {
        ops += 1;
        let byte = b.u8();
        let slot = usize::from(byte >> 6) % 3;
        let op = byte & 0x3F;
        if op % 16 == 0 {
            if handles[slot].is_none() {
                handles[slot] = sim.open(abi::USER_PATH).ok();
            }
            continue;
        }
        match op % 16 {
            // Adapter-wide, whatever the handle.
            11 => {
                sim.pause(0);
                let _ = sim.restart(0);
            }
            12 => {
                sim.detach(0);
                let _ = sim.attach(0);
                let _ = sim.restart(0);
            }
            13 => {
                let n = usize::from(b.u8() % 4) + 1;
                sim.adapter(0).indicate(&frames.take(n));
                sim.adapter(0).send(&frames.take(1));
            }
            14 => sim.advance_time(std::time::Duration::from_millis(u64::from(b.u8()))),
            15 => sim.run_until_idle(),
            op => {
                let Some(h) = handles[slot].as_ref() else {
                    continue;
                };
                match op {
                    1 => {
                        let version = if b.u8() == 0xFF { 0 } else { abi::ABI_VERSION };
                        let _ = bind(&sim, h, version);
                    }
                    2 => {
                        let direction = u32::from(b.u8() % 3);
                        let _ = h.device_io_control(
                            abi::IOCTL_RXINJECT_SET_DIRECTION,
                            &abi::SetDirection { direction }.to_vec(),
                            0,
                        );
                    }
                    3 => {
                        let c = capture_config(&mut b);
                        let _ = h.device_io_control(abi::IOCTL_RXINJECT_SET_CAPTURE, &c.to_vec(), 0);
                    }
                    4 => {
                        let prog: Vec<u8> = program(&mut b).iter().flat_map(|i| i.to_bytes()).collect();
                        let out = std::mem::size_of::<cap::FilterVerdict>();
                        let _ = h.device_io_control(abi::IOCTL_RXINJECT_SET_FILTER, &prog, out);
                    }
                    5 => {
                        let data = write_buffer(&mut b, &mut frames);
                        pending.push((slot, h.start_write(&data)));
                    }
                    6 => {
                        let len = [0usize, 64, 4096, 1 << 19][usize::from(b.u8() % 4)];
                        pending.push((slot, h.start_read(len)));
                    }
                    7 if !pending.is_empty() => {
                        let (s, irp) = pending.remove(usize::from(b.u8()) % pending.len());
                        if let Some(h) = handles[s].as_ref() {
                            h.cancel(irp);
                        }
                    }
                    8 => {
                        // The client closes the handle (cleanup, then close once its IRPs
                        // are done); its IRPs' results stay uncollected.
                        pending.retain(|(s, _)| *s != slot);
                        if let Some(h) = handles[slot].take() {
                            h.close();
                        }
                    }
                    9 => {
                        let _ = h.device_io_control(abi::IOCTL_RXINJECT_STOP_CAPTURE, &[], 0);
                    }
                    10 => {
                        let out = std::mem::size_of::<cap::CaptureStats>();
                        let _ = h.device_io_control(abi::IOCTL_RXINJECT_GET_CAPTURE_STATS, &[], out);
                    }
                    _ => {}
                }
            }
        }
        // Collect what completed (the client's threads reading their results).
        pending.retain(|(s, irp)| handles[*s].as_ref().is_some_and(|h| h.poll(*irp).is_none()));
    }
    // The client exits: its outstanding I/O is cancelled, then its handles are closed.
    for (s, irp) in pending.drain(..) {
        if let Some(h) = handles[s].as_ref() {
            h.cancel(irp);
        }
    }
    for h in handles.into_iter().flatten() {
        h.close();
    }
    finish(sim, "device_sequence");
}
