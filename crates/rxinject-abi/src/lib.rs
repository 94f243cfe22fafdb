//! The contract between the rxinject driver, its INF and the user-mode tools.
//!
//! `no_std`, dependency-free, and built for both kernel and user mode (like
//! win-net-test's `fnlwfapi.h`): every name the INF, the driver and the tools must agree
//! on is defined once, here, and the INF consistency test checks the INF against it.
#![no_std]

/// The driver's service name (`AddService` in the INF, `ServiceName` in the filter
/// characteristics, the `.sys` file stem).
pub const SERVICE_NAME: &str = "rxinject";

/// The filter's unique name: its `NetCfgInstanceId` GUID, braces included, upper case as
/// NDIS compares it.
pub const FILTER_UNIQUE_NAME: &str = "{55851E4F-D5BE-4EA9-BC6B-725F93193597}";

/// The friendly name NDIS shows for the filter (the INF's description string).
pub const FILTER_FRIENDLY_NAME: &str = "rxinject NDIS frame injection filter";

/// The netcfg component id (`netcfg -i <id>`), the INF's hardware id for the filter.
pub const COMPONENT_ID: &str = "RX_RxInject";

/// The media types the filter binds to (the INF's `FilterMediaTypes`).
pub const FILTER_MEDIA_TYPES: &str = "ethernet";

/// Version of the driver, as `major.minor.patch` (the INF's `DriverVer` version).
pub const DRIVER_VERSION: (u8, u8, u16) = (0, 1, 0);

/// Pool tags, one per module, as `u32` values whose bytes spell the tag in memory order
/// (poolmon and `!poolused` show `Rxfm` for [`tags::TAG_FILTER_MODULE`]).
pub mod tags {
    const fn tag(s: &[u8; 4]) -> u32 {
        u32::from_le_bytes(*s)
    }
    /// Filter module contexts (`filter.rs`).
    pub const TAG_FILTER_MODULE: u32 = tag(b"Rxfm");
    /// NBL pools (`pool.rs`).
    pub const TAG_NBL_POOL: u32 = tag(b"Rxnp");
    /// Cloned OID requests (`oid.rs`).
    pub const TAG_OID: u32 = tag(b"Rxoi");
    /// The global allocator (`mem.rs`).
    pub const TAG_GLOBAL_ALLOC: u32 = tag(b"Rxga");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unique_name_is_a_braced_upper_case_guid() {
        let b = FILTER_UNIQUE_NAME.as_bytes();
        assert_eq!(b.len(), 38);
        assert_eq!((b[0], b[37]), (b'{', b'}'));
        for (i, c) in b[1..37].iter().enumerate() {
            if [8, 13, 18, 23].contains(&i) {
                assert_eq!(*c, b'-');
            } else {
                assert!(c.is_ascii_digit() || (b'A'..=b'F').contains(c), "{}", *c as char);
            }
        }
    }

    #[test]
    fn tags_spell_their_names_in_memory_order() {
        assert_eq!(&tags::TAG_FILTER_MODULE.to_le_bytes(), b"Rxfm");
    }
}
