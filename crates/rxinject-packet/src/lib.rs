//! rxinject's `Packet.dll`: the Packet API that libpcap's `pcap-npf.c` (upstream libpcap,
//! and Npcap's own `wpcap.dll`) calls, over rxinject's device, so that every pcap tool
//! (Wireshark's dumpcap, nping, scapy, tcpdump) captures and injects through rxinject
//! unchanged, into the receive path too (`SendToRxAdapters`, `PACKET_MODE_SENDTORX`).
//!
//! - [`exports`]: the exported functions, Npcap's names and conventions.
//! - [`adapter`]: what they do, over one bound handle of the device.
//! - [`layout`]: the structures callers read and write (`ADAPTER`, `PACKET`, `bpf_hdr`,
//!   `PACKET_OID_DATA`, `NetType`, `npf_if_addr`), laid out as on Windows x64.
//! - [`device`]: the device: the installed driver (Windows), or a simulator that
//!   `rxinject sim serve` runs (`RXINJECT_SIM`: on the host, and in the Windows build only
//!   with the test-only `sim-client` feature).
//! - [`os`]: events, the last error and the registry, real on Windows and stand-ins on the
//!   host, where the tests call the same exported functions in the order pcap-npf.c does.

pub mod adapter;
pub mod device;
pub mod exports;
pub mod layout;
pub mod netinfo;
pub mod os;
