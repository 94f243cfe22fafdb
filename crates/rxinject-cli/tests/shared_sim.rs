//! One simulated Windows that several processes share (`rxinject sim serve`): what one
//! process injects, another captures; a process that dies gets its handles cleaned up, as
//! Windows does at process exit; requests are asynchronous as overlapped I/O is (several
//! outstanding per handle, answered in any order, cancellable); the server survives clients
//! that send garbage; and at `sim stop` the simulator's report is clean.
//!
//! Nothing here waits on a clock: every step waits for a line a process prints once it is
//! ready, for an answer, or for the server to count a number of connections.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, ChildStderr, Command, Stdio};

use ndis_sim::packets;
use rxinject_user::abi::capture::{CaptureConfig, CaptureStats};
use rxinject_user::abi::{self, Pod};
use rxinject_user::remote::{Address, Connection, Request};
use rxinject_user::{NTSTATUS, abi::write::Batch};

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_rxinject")
}

fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("rxinject-shared-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A running `rxinject sim serve`.
struct Server {
    child: Child,
    address: String,
}

impl Server {
    /// Starts a server on a socket in `d` (or TCP on loopback), and waits until it says
    /// where it listens.
    fn start(d: &std::path::Path, tcp: bool, extra: &[&str]) -> Server {
        let mut cmd = Command::new(bin());
        cmd.args(["sim", "serve", "--quiet"]);
        if tcp {
            cmd.args(["--listen", "127.0.0.1:0"]);
        } else {
            cmd.arg("--socket").arg(d.join("sim.sock"));
        }
        let mut child = cmd
            .args(extra)
            .env_remove("RXINJECT_SIM")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start rxinject sim serve");
        let mut line = String::new();
        BufReader::new(child.stdout.as_mut().unwrap())
            .read_line(&mut line)
            .unwrap();
        let address = line
            .trim()
            .strip_prefix("RXINJECT_SIM=")
            .unwrap_or_else(|| panic!("the server's first line names its address: {line:?}"))
            .to_string();
        Server { child, address }
    }

    /// `rxinject` with RXINJECT_SIM set to this server.
    fn client(&self, args: &[&str]) -> Command {
        let mut c = Command::new(bin());
        c.args(args).env("RXINJECT_SIM", &self.address);
        c
    }

    fn connect(&self) -> std::sync::Arc<Connection> {
        Connection::connect(&Address::parse(&self.address)).expect("connect to the server")
    }

    /// `rxinject sim stop`: the report must be clean, and the server exits 0.
    fn stop_clean(mut self) -> String {
        let out = Command::new(bin())
            .args(["sim", "stop", &self.address])
            .output()
            .unwrap();
        let report = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "sim stop: {report}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let status = self.child.wait().unwrap();
        assert!(status.success(), "the server exits 0 with a clean report");
        report
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Reads `stderr` until a line containing `needle` (the process is ready).
fn wait_for_line(stderr: &mut BufReader<ChildStderr>, needle: &str) {
    let mut seen = String::new();
    loop {
        let mut line = String::new();
        let n = stderr.read_line(&mut line).unwrap();
        assert!(n > 0, "the process ended without printing {needle:?}:\n{seen}");
        if line.contains(needle) {
            return;
        }
        seen.push_str(&line);
    }
}

/// The host stack's own packet filter (directed, multicast, broadcast), and promiscuous.
const PROTOCOLS_FILTER: u32 = 0x0B;
const PROMISCUOUS: u32 = 0x20;

const HOST_MAC: [u8; 6] = [0x02, 0x52, 0x58, 0x00, 0x00, 0x01];
const HOST_IP: [u8; 4] = [192, 168, 77, 1];
const PEER_MAC: [u8; 6] = [0x02, 0x00, 0x00, 0x00, 0x00, 0x99];
const PEER_IP: [u8; 4] = [192, 168, 77, 2];

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[test]
fn what_one_process_injects_into_the_rx_path_another_captures() {
    let d = dir("two");
    let server = Server::start(&d, false, &[]);
    let out = d.join("cap.pcapng");
    // Process 1 captures two frames; it says when it is capturing.
    let mut capture = server
        .client(&["--sim", "--json", "capture", "-i", "sim0", "-c", "2", "-w"])
        .arg(&out)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = BufReader::new(capture.stderr.take().unwrap());
    wait_for_line(&mut err, "capturing on sim0");
    // Process 2 injects an ARP request up into the host stack, which answers it on the wire.
    let request = packets::arp_request(PEER_MAC, PEER_IP, HOST_IP);
    let sent = server
        .client(&[
            "--sim",
            "--json",
            "send",
            "-i",
            "sim0",
            "--rx",
            "--hex",
            &hex(&request),
        ])
        .output()
        .unwrap();
    assert!(sent.status.success(), "{}", String::from_utf8_lossy(&sent.stderr));
    let v: serde_json::Value = serde_json::from_slice(&sent.stdout).unwrap();
    assert_eq!(v["frames_sent"], 1);
    assert_eq!(v["frames_delivered"], 1, "the shared host stack got it: {v}");
    // Process 1 saw both: the injected request inbound, the stack's answer outbound.
    let done = capture.wait_with_output().unwrap();
    assert!(done.status.success());
    let v: serde_json::Value = serde_json::from_slice(&done.stdout).unwrap();
    assert_eq!(
        (
            v["captured"].as_u64(),
            v["inbound"].as_u64(),
            v["outbound"].as_u64()
        ),
        (Some(2), Some(1), Some(1)),
        "{v}"
    );
    assert_eq!(v["injected"], 1, "{v}");
    let file = rxinject_user::pcap::read(&out).unwrap();
    assert_eq!(file.packets.len(), 2);
    assert_eq!(file.packets[0].data, request);
    let reply = packets::Arp::parse(&file.packets[1].data).expect("an ARP reply");
    assert_eq!((reply.sender_mac, reply.sender_ip), (HOST_MAC, HOST_IP));
    assert!(server.stop_clean().contains("no violations"));
}

#[test]
fn a_process_that_dies_gets_its_handles_cleaned_up() {
    let d = dir("dies");
    let server = Server::start(&d, false, &[]);
    // A capture, promiscuous (an OID request, undone at cleanup), reading in a loop.
    let mut capture = server
        .client(&["--sim", "capture", "-i", "sim0"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = BufReader::new(capture.stderr.take().unwrap());
    wait_for_line(&mut err, "capturing on sim0");
    let watcher = server.connect();
    let s = watcher.stats().unwrap();
    assert_eq!(s.connections, 2);
    assert_eq!(s.handles, 2, "the capture's control handle and its bound handle");
    assert_eq!(
        s.packet_filter,
        u64::from(PROTOCOLS_FILTER | PROMISCUOUS),
        "{s:?}"
    );
    // The seed's case: the process dies (SIGKILL: no chance to close anything).
    capture.kill().unwrap();
    capture.wait().unwrap();
    watcher.wait_clients(1).unwrap();
    let s = watcher.stats().unwrap();
    assert_eq!(
        (s.connections, s.handles, s.outstanding, s.irps_pending),
        (1, 0, 0, 0),
        "{s:?}"
    );
    assert_eq!(s.violations, 0);
    // The driver's cleanup undid the dead capture's promiscuous mode.
    assert_eq!(s.packet_filter, u64::from(PROTOCOLS_FILTER), "{s:?}");
    // The machine works on: another process captures and injects.
    let request = packets::arp_request(PEER_MAC, PEER_IP, HOST_IP);
    let sent = server
        .client(&["--sim", "send", "-i", "sim0", "--rx", "--hex", &hex(&request)])
        .output()
        .unwrap();
    assert!(sent.status.success(), "{}", String::from_utf8_lossy(&sent.stderr));
    drop(watcher);
    // Nothing leaked: the driver unloads with every handle closed and every IRP done.
    assert!(server.stop_clean().contains("no violations"));
}

/// The seed's case across processes: the host stack keeps the frames a writer injects up
/// (`--hold-receives`), so its write stays pending; the writer is killed. Windows cancels
/// the write and closes the handles; the driver completes the write at once (it does not
/// wait for frames the stack may never return), and they come back at the pause of the
/// unload, to a write already completed. Nothing hangs, nothing leaks.
#[test]
fn a_writer_killed_while_the_stack_holds_its_frames_leaves_nothing_behind() {
    let d = dir("seed");
    let server = Server::start(&d, false, &["--hold-receives"]);
    let request = packets::arp_request(PEER_MAC, PEER_IP, HOST_IP);
    let mut writer = server
        .client(&["--sim", "send", "-i", "sim0", "--rx", "--hex", &hex(&request)])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let watcher = server.connect();
    watcher.wait_outstanding(1).unwrap();
    let s = watcher.stats().unwrap();
    assert_eq!((s.connections, s.handles, s.outstanding), (2, 2, 1), "{s:?}");
    assert_eq!(s.delivered_rx, 1, "the stack has the frame (and keeps it)");
    writer.kill().unwrap();
    writer.wait().unwrap();
    watcher.wait_clients(1).unwrap();
    let s = watcher.stats().unwrap();
    assert_eq!((s.connections, s.handles, s.outstanding), (1, 0, 0), "{s:?}");
    assert_eq!(s.violations, 0);
    drop(watcher);
    assert!(server.stop_clean().contains("no violations"));
}

/// A handle of `c`, bound to sim0, capturing with `config`.
fn capturing(c: &Connection, config: CaptureConfig) -> u64 {
    let h = c.open(abi::USER_PATH).unwrap();
    let adapters = ioctl(c, h, abi::IOCTL_RXINJECT_LIST_ADAPTERS, &[], 4096);
    let list = abi::AdapterListHeader::read_from(&adapters.data).unwrap();
    assert_eq!(list.total, 1);
    let entry = abi::AdapterEntry::read_from(&adapters.data[std::mem::size_of::<abi::AdapterListHeader>()..])
        .unwrap();
    let bind = abi::BindRequest {
        abi_version: abi::ABI_VERSION,
        if_index: entry.if_index,
    };
    assert_eq!(
        ioctl(c, h, abi::IOCTL_RXINJECT_BIND, &bind.to_vec(), 0).status,
        NTSTATUS(0)
    );
    assert_eq!(
        ioctl(c, h, abi::IOCTL_RXINJECT_SET_CAPTURE, &config.to_vec(), 0).status,
        NTSTATUS(0)
    );
    h
}

fn ioctl(
    c: &Connection,
    handle: u64,
    code: u32,
    input: &[u8],
    output_len: u32,
) -> rxinject_user::remote::Done {
    c.call(&Request::Ioctl {
        handle,
        code,
        output_len,
        input: input.to_vec(),
    })
    .unwrap()
}

/// No timeout (a read waits for a record); a snap length that lets a 4 KiB read hold one.
fn small() -> CaptureConfig {
    CaptureConfig {
        snaplen: 256,
        ..CaptureConfig::default()
    }
}

const STATUS_CANCELLED: NTSTATUS = NTSTATUS(0xC000_0120u32 as i32);

#[test]
fn requests_are_asynchronous_several_per_handle_answered_in_any_order_and_cancellable() {
    let d = dir("async");
    let server = Server::start(&d, true, &[]);
    let c = server.connect();
    // No timeout: a read waits for a record. Inbound only: the host stack's answer to what
    // is injected below is not captured, so the ring is empty again after one record.
    let h = capturing(
        &c,
        CaptureConfig {
            directions: abi::capture::CAPTURE_IN,
            ..small()
        },
    );
    let r1 = c
        .start(&Request::Read {
            handle: h,
            len: 64 << 10,
        })
        .unwrap();
    let r2 = c
        .start(&Request::Read {
            handle: h,
            len: 64 << 10,
        })
        .unwrap();
    // Another request of the same handle is answered while both reads wait.
    let stats = ioctl(
        &c,
        h,
        abi::IOCTL_RXINJECT_GET_CAPTURE_STATS,
        &[],
        std::mem::size_of::<CaptureStats>() as u32,
    );
    assert!(stats.status.is_success());
    assert_eq!(c.poll(r1).unwrap(), None);
    assert_eq!(c.poll(r2).unwrap(), None);
    // The second is cancelled; it completes first.
    c.cancel(r2).unwrap();
    let d2 = c.wait(r2).unwrap();
    assert_eq!(d2.status, STATUS_CANCELLED);
    // (The server answers one connection's requests in order: after this, r1 is still
    // outstanding, as nothing has arrived.)
    assert_eq!(c.stats().unwrap().outstanding, 1);
    assert_eq!(c.poll(r1).unwrap(), None);
    // A frame injected on another handle (of another process) completes the first read.
    let other = server.connect();
    let w = other.open(abi::USER_PATH).unwrap();
    let adapters = ioctl(&other, w, abi::IOCTL_RXINJECT_LIST_ADAPTERS, &[], 4096);
    let entry = abi::AdapterEntry::read_from(&adapters.data[std::mem::size_of::<abi::AdapterListHeader>()..])
        .unwrap();
    let bind = abi::BindRequest {
        abi_version: abi::ABI_VERSION,
        if_index: entry.if_index,
    };
    assert!(
        ioctl(&other, w, abi::IOCTL_RXINJECT_BIND, &bind.to_vec(), 0)
            .status
            .is_success()
    );
    let request = packets::arp_request(PEER_MAC, PEER_IP, HOST_IP);
    let mut batch = Batch::new();
    assert!(batch.push(abi::write::DIR_RX, 0, &request));
    let wrote = other
        .call(&Request::Write {
            handle: w,
            data: batch.as_bytes().to_vec(),
        })
        .unwrap();
    assert!(wrote.status.is_success());
    assert_eq!(wrote.information, 1);
    let d1 = c.wait(r1).unwrap();
    assert!(d1.status.is_success());
    let recs: Vec<_> = abi::capture::records(&d1.data).collect();
    assert_eq!(recs.len(), 1);
    assert_eq!(recs[0].frame, &request[..]);
    // A handle number of another process is no handle here.
    let foreign = ioctl(&c, w, abi::IOCTL_RXINJECT_GET_COUNTERS, &[], 64);
    assert_eq!(
        foreign.status,
        NTSTATUS(0xC000_0008u32 as i32),
        "STATUS_INVALID_HANDLE"
    );
    // A close with a read outstanding: cleanup completes it (cancelled), then close.
    let r3 = c.start(&Request::Read { handle: h, len: 4096 }).unwrap();
    assert!(c.call(&Request::Close { handle: h }).unwrap().status.is_success());
    assert_eq!(c.wait(r3).unwrap().status, STATUS_CANCELLED);
    drop((c, other));
    assert!(server.stop_clean().contains("no violations"));
}

/// Windows at process exit: the process's outstanding I/O is cancelled, then its handles
/// are closed. The watcher sees both in the I/O manager's counts.
#[test]
fn a_connection_that_goes_has_its_requests_cancelled_then_its_handles_closed() {
    let d = dir("goes");
    let server = Server::start(&d, false, &[]);
    let watcher = server.connect();
    let before = watcher.stats().unwrap();
    let c = server.connect();
    let h = capturing(&c, small());
    let _r1 = c.start(&Request::Read { handle: h, len: 4096 }).unwrap();
    let _r2 = c.start(&Request::Read { handle: h, len: 4096 }).unwrap();
    watcher.wait_outstanding(2).unwrap();
    let s = watcher.stats().unwrap();
    assert_eq!((s.handles, s.irps_pending), (1, 2), "{s:?}");
    drop(c);
    watcher.wait_clients(1).unwrap();
    let s = watcher.stats().unwrap();
    assert_eq!((s.handles, s.irps_pending, s.outstanding), (0, 0, 0), "{s:?}");
    assert_eq!(
        s.irps_cancelled,
        before.irps_cancelled + 2,
        "both reads cancelled: {s:?}"
    );
    drop(watcher);
    assert!(server.stop_clean().contains("no violations"));
}

#[test]
fn garbage_from_a_client_ends_that_client_only() {
    use std::io::Write;
    let d = dir("garbage");
    let server = Server::start(&d, false, &[]);
    let good = server.connect();
    let h = capturing(&good, small());
    let pending = good.start(&Request::Read { handle: h, len: 4096 }).unwrap();
    for junk in [
        vec![0xFFu8; 4],                                  // a length beyond the limit
        vec![3, 0, 0, 0, 1, 2, 3],                        // a length too short for a header
        [&13u32.to_le_bytes()[..], &[0x7F; 13]].concat(), // an unknown kind
        [&9u32.to_le_bytes()[..], &[6; 9]].concat(),      // READ without its fields
    ] {
        let mut s = std::os::unix::net::UnixStream::connect(&server.address).unwrap();
        // It opens a handle first, so that its end has something to clean up.
        let open = rxinject_user::remote::encode_request(
            1,
            &Request::Open {
                path: abi::USER_PATH.into(),
            },
        );
        s.write_all(&open).unwrap();
        let mut r = s.try_clone().unwrap();
        let answer = rxinject_user::remote::read_frame(&mut r).unwrap().unwrap();
        assert!(
            rxinject_user::remote::decode_done(&answer)
                .unwrap()
                .1
                .status
                .is_success()
        );
        s.write_all(&junk).unwrap();
        // The server hangs up on it.
        assert!(matches!(
            rxinject_user::remote::read_frame(&mut r),
            Ok(None) | Err(_)
        ));
    }
    good.wait_clients(1).unwrap();
    let s = good.stats().unwrap();
    assert_eq!(
        (s.connections, s.handles, s.outstanding),
        (1, 1, 1),
        "the good client's handle and read: {s:?}"
    );
    assert_eq!(good.poll(pending).unwrap(), None);
    drop(good);
    assert!(server.stop_clean().contains("no violations"));
}

#[test]
fn shared_simulator_usage_errors_are_clear() {
    let d = dir("usage");
    let server = Server::start(&d, false, &[]);
    let out = server
        .client(&["--sim", "--sim-wire", "x.pcap", "adapters"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("rxinject sim serve --wire"));
    // A second server on the same socket is refused while the first runs.
    let again = Command::new(bin())
        .args(["sim", "serve", "--socket"])
        .arg(d.join("sim.sock"))
        .output()
        .unwrap();
    assert_eq!(again.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&again.stderr).contains("already serving"));
    // Only loopback.
    let wide = Command::new(bin())
        .args(["sim", "serve", "--listen", "0.0.0.0:0"])
        .output()
        .unwrap();
    assert_eq!(wide.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&wide.stderr).contains("loopback"));
    server.stop_clean();
    // No server: a clear message.
    let none = Command::new(bin())
        .args(["--sim", "adapters"])
        .env("RXINJECT_SIM", d.join("sim.sock"))
        .output()
        .unwrap();
    assert_eq!(none.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&none.stderr).contains("is `rxinject sim serve` running?"));
}
