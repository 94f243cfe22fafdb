//! An adapter's addresses (`PacketGetNetInfoEx`). Windows knows them, not the driver: the IP
//! Helper API (`GetAdaptersAddresses`), as Npcap's DLL asks it. With a simulator, the
//! simulated Windows answers in its stead (`ADDRESSES`: sim0's host stack is 192.168.77.1/24).

use crate::layout::{NpfIfAddr, SockaddrStorage};

/// The adapter's addresses: of the simulated machine if a simulator is named, else Windows'.
pub fn addresses(guid: &str) -> Vec<NpfIfAddr> {
    #[cfg(any(not(windows), feature = "sim-client"))]
    if let Some(a) = crate::device::sim::address() {
        return simulated(&a, guid);
    }
    #[cfg(windows)]
    {
        windows(guid)
    }
    #[cfg(not(windows))]
    {
        let _ = guid;
        Vec::new()
    }
}

/// An IPv4 address with its mask and broadcast address.
pub fn ipv4(ip: [u8; 4], prefix: u8) -> NpfIfAddr {
    let bits = u32::from(prefix.min(32));
    let mask = if bits == 0 { 0 } else { u32::MAX << (32 - bits) };
    let m = mask.to_be_bytes();
    let b = (u32::from_be_bytes(ip) | !mask).to_be_bytes();
    NpfIfAddr {
        ip_address: SockaddrStorage::ipv4(ip),
        subnet_mask: SockaddrStorage::ipv4(m),
        broadcast: SockaddrStorage::ipv4(b),
    }
}

#[cfg(any(not(windows), feature = "sim-client"))]
fn simulated(a: &rxinject_user::remote::Address, guid: &str) -> Vec<NpfIfAddr> {
    let Ok(list) = crate::adapter::list() else {
        return Vec::new();
    };
    let Some(l) = list.iter().find(|l| l.guid.eq_ignore_ascii_case(guid)) else {
        return Vec::new();
    };
    let Ok(c) = rxinject_user::remote::Connection::connect(a) else {
        return Vec::new();
    };
    c.addresses()
        .unwrap_or_default()
        .into_iter()
        .filter(|(i, _, _)| *i == l.if_index)
        .map(|(_, ip, prefix)| ipv4(ip, prefix))
        .collect()
}

#[cfg(windows)]
fn windows(guid: &str) -> Vec<NpfIfAddr> {
    use windows_sys::Win32::NetworkManagement::IpHelper::{
        GAA_FLAG_SKIP_ANYCAST, GAA_FLAG_SKIP_DNS_SERVER, GAA_FLAG_SKIP_MULTICAST, GetAdaptersAddresses,
        IP_ADAPTER_ADDRESSES_LH,
    };
    use windows_sys::Win32::Networking::WinSock::{AF_INET, AF_INET6, AF_UNSPEC, SOCKADDR_IN, SOCKADDR_IN6};

    let flags = GAA_FLAG_SKIP_ANYCAST | GAA_FLAG_SKIP_MULTICAST | GAA_FLAG_SKIP_DNS_SERVER;
    let mut size = 16u32 << 10;
    let mut buf: Vec<u64> = Vec::new();
    for _ in 0..4 {
        buf = vec![0u64; (size as usize).div_ceil(8)];
        // SAFETY: a buffer of `size` bytes, 8-aligned.
        let r = unsafe {
            GetAdaptersAddresses(
                u32::from(AF_UNSPEC),
                flags,
                std::ptr::null(),
                buf.as_mut_ptr().cast(),
                &mut size,
            )
        };
        match r {
            0 => break,
            111 => continue, // ERROR_BUFFER_OVERFLOW: `size` is what it needs
            _ => return Vec::new(),
        }
    }
    let want = guid.trim_matches(|c| c == '{' || c == '}');
    let mut out = Vec::new();
    let mut a = buf.as_ptr().cast::<IP_ADAPTER_ADDRESSES_LH>();
    while !a.is_null() {
        // SAFETY: a node of the list GetAdaptersAddresses wrote into `buf`.
        let ad = unsafe { &*a };
        let mut name = Vec::new();
        let mut p = ad.AdapterName;
        // SAFETY: a NUL-terminated ANSI string of the list.
        while !p.is_null() && unsafe { *p } != 0 {
            // SAFETY: as above.
            name.push(unsafe { *p });
            // SAFETY: as above.
            p = unsafe { p.add(1) };
        }
        let name = String::from_utf8_lossy(&name);
        if name
            .trim_matches(|c| c == '{' || c == '}')
            .eq_ignore_ascii_case(want)
        {
            let mut u = ad.FirstUnicastAddress;
            while !u.is_null() {
                // SAFETY: a node of the list.
                let ua = unsafe { &*u };
                let sa = ua.Address.lpSockaddr;
                if !sa.is_null() {
                    // SAFETY: the address's sockaddr.
                    let family = unsafe { (*sa).sa_family };
                    let mut e = NpfIfAddr {
                        ip_address: SockaddrStorage::ZERO,
                        subnet_mask: SockaddrStorage::ZERO,
                        broadcast: SockaddrStorage::ZERO,
                    };
                    if family == AF_INET {
                        // SAFETY: an AF_INET sockaddr is a SOCKADDR_IN.
                        let sin = unsafe { sa.cast::<SOCKADDR_IN>().read_unaligned() };
                        // SAFETY: every view of the address union is its four bytes.
                        let ip = unsafe { sin.sin_addr.S_un.S_addr }.to_ne_bytes();
                        out.push(ipv4(ip, ua.OnLinkPrefixLength));
                    } else if family == AF_INET6 {
                        let len = std::mem::size_of::<SOCKADDR_IN6>().min(128);
                        // SAFETY: an AF_INET6 sockaddr of `len` bytes, copied whole.
                        unsafe {
                            std::ptr::copy_nonoverlapping(
                                sa.cast::<u8>(),
                                (&mut e.ip_address as *mut SockaddrStorage).cast::<u8>(),
                                len,
                            )
                        };
                        out.push(e);
                    }
                }
                u = ua.Next;
            }
        }
        a = ad.Next;
    }
    out
}
