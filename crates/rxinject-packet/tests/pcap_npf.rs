//! The Packet API as libpcap's `pcap-npf.c` calls it, on the host: the DLL's own exported
//! functions, compiled for this machine, against rxinject's driver in the simulator
//! (`rxinject sim serve`, run in a thread of this test), in pcap-npf.c's order: find the
//! devices; open and activate (timestamp modes, nanosecond mode, BPF extensions,
//! promiscuous mode, kernel buffer, immediate mode, the snapshot program, read timeout);
//! set a filter; a read loop on the read event while another process injects; send a
//! frame and a send queue, down the wire and up the receive path (`PACKET_MODE_SENDTORX`,
//! and the `SendToRxAdapters` registry value); statistics; close while a read waits; and
//! what every bad argument gets.
//!
//! Nothing waits on a clock: reads complete on data (read timeout 0, immediate mode), and
//! the close waits until the reader is counted waiting on the event.

use std::ffi::{CStr, CString};
use std::sync::Arc;

use ndis_sim::packets;
use packet::exports::*;
use packet::layout::{
    self, Adapter, BpfInsn, BpfProgram, BpfStat, NetType, NpfIfAddr, Packet, SockaddrStorage,
};
use packet::os::{self, err};
use rxinject_user::remote::{Address, Connection};
use rxinject_user::sim::serve::{self, ServeOptions};
use rxinject_user::{Driver, SimOptions, Target};

const HOST_MAC: [u8; 6] = [0x02, 0x52, 0x58, 0x00, 0x00, 0x01];
const HOST_IP: [u8; 4] = [192, 168, 77, 1];
const PEER_MAC: [u8; 6] = [0x02, 0x00, 0x00, 0x00, 0x00, 0x99];
const PEER_IP: [u8; 4] = [192, 168, 77, 2];
const PROMISCUOUS: u32 = 0x20;

/// A simulator in a thread of this process, serving on a socket of its own.
fn start_simulator(name: &str) -> (Address, std::thread::JoinHandle<serve::Outcome>) {
    let dir = std::env::temp_dir().join(format!("rxinject-packet-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let address = Address::Unix(dir.join("sim.sock"));
    let (tx, rx) = std::sync::mpsc::channel();
    let opts = ServeOptions {
        address: address.clone(),
        sim: SimOptions::default(),
    };
    let server = std::thread::spawn(move || {
        serve::serve(opts, false, |a| tx.send(a.clone()).unwrap()).expect("the simulator serves")
    });
    let address = rx.recv().expect("the simulator is ready");
    (address, server)
}

/// Another process of the simulated machine, injecting with rxinject's own library.
fn other_process(a: &Address) -> Driver {
    Driver::open(Target::Remote(a.clone())).expect("a second client")
}

fn names() -> (Vec<String>, Vec<String>) {
    let mut size = 0u32;
    assert_eq!(PacketGetAdapterNames(std::ptr::null_mut(), &mut size), 0);
    assert_eq!(os::last_error(), err::ERROR_INSUFFICIENT_BUFFER);
    assert!(size > 2);
    let mut buf = vec![0u8; size as usize];
    let mut small = size - 1;
    assert_eq!(
        PacketGetAdapterNames(buf.as_mut_ptr().cast(), &mut small),
        0,
        "one byte short"
    );
    assert_eq!(small, size);
    assert_eq!(PacketGetAdapterNames(buf.as_mut_ptr().cast(), &mut size), 1);
    // As pcap-npf.c parses it: names up to an empty one, then as many descriptions.
    let mut parts = buf
        .split(|&b| b == 0)
        .map(|s| String::from_utf8_lossy(s).into_owned());
    let names: Vec<String> = parts.by_ref().take_while(|s| !s.is_empty()).collect();
    let descs: Vec<String> = parts.take(names.len()).collect();
    (names, descs)
}

fn query(a: *mut Adapter, oid: u32, len: usize) -> Option<Vec<u8>> {
    let mut buf = vec![0u8; layout::OID_DATA_OFFSET + len];
    buf[..4].copy_from_slice(&oid.to_le_bytes());
    buf[4..8].copy_from_slice(&(len as u32).to_le_bytes());
    if PacketRequest(a, 0, buf.as_mut_ptr().cast()) == 0 {
        return None;
    }
    let n = u32::from_le_bytes([buf[4], buf[5], buf[6], buf[7]]) as usize;
    Some(buf[8..8 + n].to_vec())
}

/// One `bpf_hdr` record of a read.
#[derive(Debug)]
struct Rec {
    sec: i32,
    frac: i32,
    caplen: u32,
    datalen: u32,
    data: Vec<u8>,
}

/// Parses a read's buffer as pcap-npf.c's loop does.
fn parse(buf: &[u8]) -> Vec<Rec> {
    let mut v = Vec::new();
    let mut at = 0usize;
    while at < buf.len() {
        let w =
            |i: usize| u32::from_le_bytes([buf[at + i], buf[at + i + 1], buf[at + i + 2], buf[at + i + 3]]);
        let (sec, frac, caplen, datalen) = (w(0) as i32, w(4) as i32, w(8), w(12));
        let hdrlen = u16::from_le_bytes([buf[at + 16], buf[at + 17]]) as usize;
        assert_eq!(hdrlen, layout::BPF_HDR_LEN);
        let data = buf[at + hdrlen..at + hdrlen + caplen as usize].to_vec();
        v.push(Rec {
            sec,
            frac,
            caplen,
            datalen,
            data,
        });
        at += layout::word_align(hdrlen + caplen as usize).min(buf.len() - at);
        assert_eq!(at % layout::PACKET_ALIGNMENT, 0, "Packet_WORDALIGN");
    }
    v
}

/// `pcap_next_ex` in pcap-npf.c's way: wait on the read event, then PacketReceivePacket
/// into a PACKET initialised on the stack, until `n` records came.
fn read_records(a: *mut Adapter, n: usize) -> Vec<Rec> {
    let mut got = Vec::new();
    let mut buf = vec![0u8; 256_000];
    while got.len() < n {
        let ev = PacketGetReadEvent(a);
        assert!(!ev.is_null());
        // SAFETY: the adapter's live event. (The bound only turns a hang into a failure: the
        // data is there long before it.)
        let set = unsafe { os::wait_event(ev, Some(30_000)) };
        assert!(set, "no data waiting after 30 s: {got:?}");
        // SAFETY: PACKET is plain data.
        let mut p: Packet = unsafe { std::mem::zeroed() };
        PacketInitPacket(&mut p, buf.as_mut_ptr().cast(), buf.len() as u32);
        assert_eq!(PacketReceivePacket(a, &mut p, 1), 1, "error {}", os::last_error());
        got.extend(parse(&buf[..p.bytes_received as usize]));
    }
    got
}

fn send_one(a: *mut Adapter, frame: &[u8]) -> u8 {
    let mut f = frame.to_vec();
    let p = PacketAllocatePacket();
    PacketInitPacket(p, f.as_mut_ptr().cast(), f.len() as u32);
    let ok = PacketSendPacket(a, p, 1);
    PacketFreePacket(p);
    ok
}

fn udp(dst_ip: [u8; 4], port: u16, payload: &[u8]) -> Vec<u8> {
    packets::Udp {
        src_mac: PEER_MAC,
        dst_mac: HOST_MAC,
        src_ip: PEER_IP,
        dst_ip,
        src_port: 40000,
        dst_port: port,
        payload: payload.to_vec(),
    }
    .to_frame()
}

#[test]
fn libpcap_calls_in_pcap_npf_order_capture_and_inject_through_rxinject() {
    let (address, server) = start_simulator("order");
    packet::device::sim::set_address(Some(address.clone()));

    // The version functions report rxinject's.
    // SAFETY: static NUL-terminated strings.
    let v = unsafe { CStr::from_ptr(PacketGetVersion()) }
        .to_string_lossy()
        .into_owned();
    assert!(v.starts_with("rxinject Packet.dll "), "{v}");
    // SAFETY: as above.
    let dv = unsafe { CStr::from_ptr(PacketGetDriverVersion()) }
        .to_string_lossy()
        .into_owned();
    assert!(dv.starts_with("rxinject ") && dv.contains("(ABI 1."), "{dv}");
    // SAFETY: as above.
    let driver_name = unsafe { CStr::from_ptr(PacketGetDriverName()) };
    assert_eq!(driver_name.to_str(), Ok("rxinject"));

    // pcap_findalldevs: names, descriptions, addresses, and the four OIDs of `-D`.
    let (names, descs) = names();
    assert_eq!(names.len(), 1, "{names:?}");
    let name = &names[0];
    assert!(
        name.starts_with("\\Device\\NPF_{") && name.ends_with('}'),
        "{name}"
    );
    assert_eq!(descs, ["Simulated Ethernet Adapter #0"]);
    let cname = CString::new(name.as_str()).unwrap();
    let mut addrs = [NpfIfAddr {
        ip_address: SockaddrStorage::ZERO,
        subnet_mask: SockaddrStorage::ZERO,
        broadcast: SockaddrStorage::ZERO,
    }; layout::MAX_NETWORK_ADDRESSES];
    let mut n = addrs.len() as i32;
    assert_eq!(PacketGetNetInfoEx(cname.as_ptr(), addrs.as_mut_ptr(), &mut n), 1);
    assert_eq!(n, 1, "the simulated Windows' IP Helper: sim0's host address");
    let v4 = |s: &SockaddrStorage| (s.family, [s.data[2], s.data[3], s.data[4], s.data[5]]);
    assert_eq!(v4(&addrs[0].ip_address), (layout::AF_INET, HOST_IP));
    assert_eq!(v4(&addrs[0].subnet_mask), (layout::AF_INET, [255, 255, 255, 0]));
    assert_eq!(v4(&addrs[0].broadcast), (layout::AF_INET, [192, 168, 77, 255]));
    let mut none = 0;
    assert_eq!(
        PacketGetNetInfoEx(cname.as_ptr(), addrs.as_mut_ptr(), &mut none),
        1
    );
    assert_eq!(none, 0, "room for none: none written");
    assert_eq!(PacketIsLoopbackAdapter(cname.as_ptr()), 0);
    assert_eq!(PacketIsMonitorModeSupported(cname.as_ptr()), 0);

    // pcap_activate.
    let a = PacketOpenAdapter(cname.as_ptr());
    assert!(!a.is_null(), "error {}", os::last_error());
    // SAFETY: the adapter just opened (libpcap reads these two fields itself).
    let h_file = unsafe { (*a).h_file };
    // SAFETY: as above.
    let flags = unsafe { (*a).flags };
    assert!(!h_file.is_null());
    assert_eq!(flags & layout::INFO_FLAG_DAG_CARD, 0);
    let hw = query(a, 0x0001_0102, 4).expect("OID_GEN_HARDWARE_STATUS");
    assert_eq!(hw, 0u32.to_le_bytes(), "NdisHardwareStatusReady");
    // The other three OIDs of `-D` (get_if_flags): an answer, or a failure libpcap takes as
    // "unknown".
    for oid in [0x0001_0205u32, 0x0001_0202] {
        match query(a, oid, 4) {
            Some(m) => assert_eq!(m, 14u32.to_le_bytes(), "OID {oid:#x}: NdisPhysicalMedium802_3"),
            None => assert_ne!(os::last_error(), 0, "OID {oid:#x}"),
        }
    }
    let link = query(a, 0x0001_0207, 40).expect("OID_GEN_LINK_STATE");
    assert_eq!(&link[4..8], &1u32.to_le_bytes(), "MediaConnectStateConnected");
    let mac = query(a, 0x0101_0102, 6).expect("OID_802_3_CURRENT_ADDRESS");
    assert_eq!(mac, HOST_MAC);
    let mut t = NetType::default();
    assert_eq!(PacketGetNetType(a, &mut t), 1);
    assert_eq!(t.link_type, 0, "NdisMedium802_3 (DLT_EN10MB)");
    let mut modes = [1u32, 0, 0];
    assert_eq!(PacketGetTimestampModes(a, modes.as_mut_ptr()), 0);
    assert_eq!((os::last_error(), modes[0]), (err::ERROR_MORE_DATA, 1));
    modes[0] = 3;
    assert_eq!(PacketGetTimestampModes(a, modes.as_mut_ptr()), 1);
    assert_eq!(&modes[..2], &[1, layout::timestamp::QUERYSYSTEMTIME_PRECISE]);
    assert_eq!(
        PacketSetTimestampMode(a, layout::timestamp::QUERYSYSTEMTIME_PRECISE),
        1
    );
    assert_eq!(PacketSetMode(a, layout::mode::NANO), 1);
    let mut info = [0u8; 12];
    info[..4].copy_from_slice(&layout::getinfo::BPFEXT.to_le_bytes());
    info[4..8].copy_from_slice(&4u32.to_le_bytes());
    assert_eq!(PacketGetInfo(a, info.as_mut_ptr().cast()), 1);
    assert_eq!(
        &info[8..],
        &[0; 4],
        "no BPF extensions: VLAN tests stay in the packet"
    );
    assert_eq!(
        PacketSetHwFilter(a, PROMISCUOUS),
        1,
        "error {:#x}",
        os::last_error()
    );
    let watcher = Connection::connect(&address).unwrap();
    assert_ne!(watcher.stats().unwrap().packet_filter & u64::from(PROMISCUOUS), 0);
    assert_eq!(PacketSetBuff(a, 1_000_000), 1);
    assert_eq!(PacketSetMinToCopy(a, 0), 1, "immediate mode");
    let snap = [BpfInsn {
        code: 0x06,
        jt: 0,
        jf: 0,
        k: 262_144,
    }];
    let prog = BpfProgram {
        bf_len: 1,
        bf_insns: snap.as_ptr(),
    };
    assert_eq!(PacketSetBpf(a, &prog), 1);
    assert_eq!(PacketSetReadTimeout(a, 0), 1);
    // SAFETY: our open adapter.
    assert_eq!(unsafe { (*a).read_timeout }, 0);

    // Another process of the machine, which injects; what it injects now is captured under
    // the snapshot program (the read event says so), and must not come out once the
    // filter below is set: a new program discards what the old one let in.
    let other = other_process(&address);
    let sim0 = other.find_adapter("sim0").unwrap();
    let h = other.bind(&sim0).unwrap();
    h.set_direction(true).unwrap();
    let mut early = rxinject_user::abi::write::Batch::new();
    early.push(
        rxinject_user::abi::write::DIR_RX,
        0,
        &udp(HOST_IP, 7, b"before the filter"),
    );
    assert_eq!(h.send(&early).unwrap().accepted, 1);
    // SAFETY: the adapter's live event.
    assert!(unsafe { os::wait_event(PacketGetReadEvent(a), None) });

    // pcap_setfilter: "arp".
    let arp = [
        BpfInsn {
            code: 0x28,
            jt: 0,
            jf: 0,
            k: 12,
        },
        BpfInsn {
            code: 0x15,
            jt: 0,
            jf: 1,
            k: 0x0806,
        },
        BpfInsn {
            code: 0x06,
            jt: 0,
            jf: 0,
            k: 262_144,
        },
        BpfInsn {
            code: 0x06,
            jt: 0,
            jf: 0,
            k: 0,
        },
    ];
    let prog = BpfProgram {
        bf_len: arp.len() as u32,
        bf_insns: arp.as_ptr(),
    };
    assert_eq!(PacketSetBpf(a, &prog), 1);

    // The read loop, while another process injects an ARP request and a UDP datagram up
    // into the host stack: the request (inbound) and the stack's answer (outbound) pass the
    // filter, the datagram and its echo do not.
    let request = packets::arp_request(PEER_MAC, PEER_IP, HOST_IP);
    let mut batch = rxinject_user::abi::write::Batch::new();
    batch.push(rxinject_user::abi::write::DIR_RX, 0, &udp(HOST_IP, 7, b"not arp"));
    batch.push(rxinject_user::abi::write::DIR_RX, 0, &request);
    assert_eq!(h.send(&batch).unwrap().accepted, 2);
    let recs = read_records(a, 2);
    assert_eq!(recs.len(), 2, "{recs:?}");
    assert_eq!(recs[0].data, request);
    assert_eq!((recs[0].caplen, recs[0].datalen), (42, 42));
    let reply = packets::Arp::parse(&recs[1].data).expect("the stack's ARP reply");
    assert_eq!((reply.operation, reply.sender_mac), (2, HOST_MAC));
    assert!(
        recs.iter()
            .all(|r| r.sec > 0 && (0..1_000_000_000).contains(&r.frac)),
        "NANO: {recs:?}"
    );

    // Sending: down to the wire, this handle's own frames captured (loopback enabled, the
    // default); then up the receive path with PACKET_MODE_SENDTORX.
    assert_eq!(
        PacketSetBpf(
            a,
            &BpfProgram {
                bf_len: 0,
                bf_insns: std::ptr::null()
            }
        ),
        1,
        "no filter"
    );
    let before = other.delivered().unwrap();
    let down = udp(PEER_IP, 9, b"to the wire");
    assert_eq!(send_one(a, &down), 1, "error {:#x}", os::last_error());
    let recs = read_records(a, 1);
    assert_eq!(recs[0].data, down);
    assert_eq!(other.delivered().unwrap().1, before.1 + 1, "on the wire");
    assert_eq!(PacketSetMode(a, layout::mode::SENDTORX), 1);
    let ping = packets::IcmpEcho::request(PEER_MAC, HOST_MAC, PEER_IP, HOST_IP, 7, 1, b"up").to_frame();
    assert_eq!(send_one(a, &ping), 1);
    let recs = read_records(a, 2);
    assert_eq!(recs[0].data, ping, "inbound, injected");
    let echo = packets::IcmpEcho::parse(&recs[1].data).expect("the stack's echo reply");
    assert_eq!(echo.src_ip, HOST_IP);
    assert_eq!(other.delivered().unwrap().0, before.0 + 1, "to the host stack");
    // NumWrites: each frame that many times.
    assert_eq!(PacketSetNumWrites(a, 3), 1);
    assert_eq!(PacketSetMode(a, layout::mode::SENDTORX_CLEAR), 1);
    assert_eq!(send_one(a, &down), 1);
    assert_eq!(read_records(a, 3).iter().filter(|r| r.data == down).count(), 3);
    assert_eq!(PacketSetNumWrites(a, 1), 1);

    // A send queue (pcap_sendqueue_transmit): dump_bpf_hdr records, unaligned.
    let frames = [udp(PEER_IP, 9, b"queue 1"), udp(PEER_IP, 9, b"queue two")];
    let mut q = Vec::new();
    for (i, f) in frames.iter().enumerate() {
        q.extend_from_slice(&(i as u32).to_le_bytes());
        q.extend_from_slice(&0u32.to_le_bytes());
        q.extend_from_slice(&(f.len() as u32).to_le_bytes());
        q.extend_from_slice(&(f.len() as u32).to_le_bytes());
        q.extend_from_slice(f);
    }
    assert_eq!(
        PacketSendPackets(a, q.as_mut_ptr().cast(), q.len() as u32, 0),
        q.len() as i32
    );
    let recs = read_records(a, 2);
    assert_eq!(recs.iter().map(|r| r.data.clone()).collect::<Vec<_>>(), frames);
    // A queue whose second record claims more than is there: the first is sent, and the
    // count says where it stopped.
    let cut = q.len() - 3;
    assert_eq!(
        PacketSendPackets(a, q.as_mut_ptr().cast(), cut as u32, 0),
        (16 + frames[0].len()) as i32
    );
    assert_eq!(os::last_error(), err::ERROR_INVALID_PARAMETER);
    let _ = read_records(a, 1);
    // Loopback off: this handle's frames are not captured; somebody else's are.
    assert_eq!(PacketSetLoopbackBehavior(a, layout::NPF_DISABLE_LOOPBACK), 1);
    assert_eq!(send_one(a, &down), 1);
    let theirs = udp(PEER_IP, 9, b"theirs");
    h.set_direction(false).unwrap();
    let mut b2 = rxinject_user::abi::write::Batch::new();
    b2.push(rxinject_user::abi::write::DIR_TX, 0, &theirs);
    assert_eq!(h.send(&b2).unwrap().accepted, 1);
    assert_eq!(read_records(a, 1)[0].data, theirs);

    // Statistics (pcap_stats): everything seen, nothing dropped.
    let mut s = BpfStat::default();
    assert_eq!(PacketGetStats(a, &mut s), 1);
    assert!(s.bs_recv >= 14 && s.bs_capt >= 10 && s.bs_drop == 0, "{s:?}");
    let mut sx = BpfStat::default();
    assert_eq!(PacketGetStatsEx(a, &mut sx), 1);
    assert!(sx.bs_recv >= s.bs_recv);

    // Refused modes, and the kernel dump functions.
    assert_eq!(PacketSetMode(a, layout::mode::STAT), 0);
    assert_eq!(os::last_error(), err::ERROR_NOT_SUPPORTED);
    assert_eq!(PacketSetDumpName(a, std::ptr::null_mut(), 0), 0);
    assert_eq!(PacketGetAirPcapHandle(a), std::ptr::null_mut());

    // The registry's SendToRxAdapters: a handle opened afterwards sends up, unless it
    // clears it.
    let guid = &name[name.find('{').unwrap()..];
    os::set_send_to_rx_adapters(&format!(
        "{{00000000-0000-0000-0000-000000000000}};{}",
        guid.to_lowercase()
    ));
    let rx = PacketOpenAdapter(cname.as_ptr());
    assert!(!rx.is_null());
    let before = other.delivered().unwrap();
    assert_eq!(send_one(rx, &ping), 1);
    assert_eq!(other.delivered().unwrap().0, before.0 + 1, "up, by the registry");
    assert_eq!(PacketSetMode(rx, layout::mode::SENDTORX_CLEAR), 1);
    assert_eq!(send_one(rx, &down), 1);
    assert_eq!(other.delivered().unwrap().1, before.1 + 1, "down once cleared");
    PacketCloseAdapter(rx);
    os::set_send_to_rx_adapters("");
    // The first adapter captured all of it: the ping, the stack's echo, the frame down.
    let recs = read_records(a, 3);
    assert_eq!((recs[0].data == ping, recs[2].data == down), (true, true));

    // pcap_setnonblock: the read outstanding was issued to wait for data; the new setting
    // applies at once (the DLL re-issues it), and a read returns nothing without waiting.
    assert_eq!(PacketSetReadTimeout(a, -1), 1);
    let ev = PacketGetReadEvent(a);
    // SAFETY: the adapter's live event. (The bound turns the old behaviour, a read that
    // waits for data regardless, into a failure.)
    let set = unsafe { os::wait_event(ev, Some(30_000)) };
    assert!(set, "the non-blocking read did not complete");
    let mut buf = vec![0u8; 65_536];
    // SAFETY: PACKET is plain data.
    let mut p: Packet = unsafe { std::mem::zeroed() };
    PacketInitPacket(&mut p, buf.as_mut_ptr().cast(), buf.len() as u32);
    assert_eq!(PacketReceivePacket(a, &mut p, 1), 1);
    assert_eq!(p.bytes_received, 0);
    assert_eq!(PacketSetReadTimeout(a, 0), 1);

    // Close while another thread waits in PacketReceivePacket (pcap_close during pcap_loop):
    // the read returns, the handle is closed, nothing hangs.
    let ev = PacketGetReadEvent(a) as usize;
    let addr = a as usize;
    let reader = std::thread::spawn(move || {
        let mut buf = vec![0u8; 65_536];
        // SAFETY: PACKET is plain data.
        let mut p: Packet = unsafe { std::mem::zeroed() };
        PacketInitPacket(&mut p, buf.as_mut_ptr().cast(), buf.len() as u32);
        let ok = PacketReceivePacket(addr as *mut Adapter, &mut p, 1);
        (ok, os::last_error())
    });
    // SAFETY: the adapter's event lives until the reader has left (it holds the state).
    while unsafe { os::waiting_on(ev as layout::Handle) } == 0 && !reader.is_finished() {
        std::thread::yield_now();
    }
    assert!(
        !reader.is_finished(),
        "the reader returned before the close: {:?}",
        reader.join()
    );
    PacketCloseAdapter(a);
    assert_eq!(reader.join().unwrap(), (0, err::ERROR_OPERATION_ABORTED));
    // The closed adapter is refused, not followed.
    assert_eq!(PacketSetMinToCopy(a, 1), 0);
    assert_eq!(os::last_error(), err::ERROR_INVALID_HANDLE);
    watcher.wait_clients(2).unwrap();
    let st = watcher.stats().unwrap();
    assert_eq!(
        st.packet_filter & u64::from(PROMISCUOUS),
        0,
        "promiscuous mode undone at close: {st:?}"
    );

    drop(h);
    other.finish().unwrap();
    let report = watcher.shutdown().unwrap();
    assert!(report.is_ok(), "{report:?}");
    let outcome = server.join().unwrap();
    assert!(outcome.clean, "{}", outcome.report);
    packet::device::sim::set_address(None);
}

#[test]
fn bad_arguments_get_an_error_never_a_crash() {
    // (No simulator: nothing here reaches a device.)
    let bogus = 0x1000 as *mut Adapter;
    let mut p: Packet = unsafe_zeroed();
    let mut buf = [0u8; 64];
    PacketInitPacket(&mut p, buf.as_mut_ptr().cast(), 64);
    assert_eq!(PacketReceivePacket(bogus, &mut p, 1), 0);
    assert_eq!(os::last_error(), err::ERROR_INVALID_HANDLE);
    assert_eq!(PacketReceivePacket(std::ptr::null_mut(), &mut p, 1), 0);
    assert_eq!(PacketSendPacket(bogus, &mut p, 1), 0);
    assert_eq!(PacketSendPackets(bogus, buf.as_mut_ptr().cast(), 64, 0), 0);
    assert_eq!(PacketSetBpf(bogus, std::ptr::null()), 0);
    assert_eq!(PacketGetReadEvent(bogus), std::ptr::null_mut());
    assert_eq!(PacketSetHwFilter(bogus, PROMISCUOUS), 0);
    assert_eq!(PacketRequest(bogus, 0, std::ptr::null_mut()), 0);
    assert_eq!(PacketGetStats(bogus, std::ptr::null_mut()), 0);
    assert_eq!(PacketSetMode(bogus, 0), 0);
    assert_eq!(PacketGetTimestampModes(bogus, std::ptr::null_mut()), 0);
    PacketCloseAdapter(bogus);
    assert_eq!(os::last_error(), err::ERROR_INVALID_HANDLE);
    PacketFreePacket(&mut p); // not ours: ignored
    PacketInitPacket(std::ptr::null_mut(), std::ptr::null_mut(), 0);
    assert!(PacketOpenAdapter(std::ptr::null()).is_null());
    assert_eq!(os::last_error(), err::ERROR_INVALID_PARAMETER);
    let no_guid = CString::new("\\Device\\NPF_Loopback").unwrap();
    assert!(PacketOpenAdapter(no_guid.as_ptr()).is_null());
    assert_eq!(os::last_error(), err::ERROR_BAD_UNIT);
    assert_eq!(
        PacketGetAdapterNames(std::ptr::null_mut(), std::ptr::null_mut()),
        0
    );
    assert_eq!(os::last_error(), err::ERROR_INVALID_PARAMETER);
    let mut n = 4;
    assert_eq!(
        PacketGetNetInfoEx(no_guid.as_ptr(), std::ptr::null_mut(), &mut n),
        0
    );
    assert_eq!(PacketStopDriver(), 0);
    let _ = Arc::new(());
}

fn unsafe_zeroed() -> Packet {
    // SAFETY: PACKET is plain data.
    unsafe { std::mem::zeroed() }
}
