//! The rules the simulator enforces (`../shared/ndis-rules.md`), violations, and the
//! strictness settings for the rules marked ⚠ there.

use std::fmt;

macro_rules! rules {
    ($( $id:ident => $summary:literal, )*) => {
        /// A rule of `ndis-rules.md`. `Debug` and `Display` print the id (`R6`).
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Rule { $( $id, )* }

        impl Rule {
            /// Every rule.
            pub const ALL: &'static [Rule] = &[ $( Rule::$id, )* ];

            /// The rule's id, e.g. `"R6"`.
            pub const fn id(self) -> &'static str {
                match self { $( Rule::$id => stringify!($id), )* }
            }

            /// One line saying what the rule demands.
            pub const fn summary(self) -> &'static str {
                match self { $( Rule::$id => $summary, )* }
            }
        }
    };
}

rules! {
    R1 => "every foreign receive NBL reaches NdisFReturnNetBufferLists exactly once, and none is held at pause/detach",
    R2 => "with RESOURCES, ownership ends when the callback returns: no return, no queuing",
    R3 => "with RESOURCES, the chain is restored (same NBLs, order, links) before returning",
    R4 => "a RESOURCES indication passed up without the flag must be back before the callback returns",
    R5 => "a filter that sets RESOURCES owns the NBLs again when the indication returns",
    R6 => "own NBLs indicated without RESOURCES come back only through FilterReturnNetBufferLists",
    R7 => "own NBLs indicated with RESOURCES never come back through FilterReturnNetBufferLists",
    R8 => "a mixed return chain is split by each NBL's SourceHandle, not by its first NBL",
    R9 => "NumberOfNetBufferLists equals the chain length",
    R10 => "receive-path NBLs on Ethernet carry exactly one NET_BUFFER",
    R11 => "SourceHandle is the filter handle on own NBLs and unchanged on foreign ones",
    R12 => "receive indications are originated or passed up only while Running",
    R13 => "a filter without a return handler originates no receive indications",
    S1 => "each NBL from FilterSendNetBufferLists ends in exactly one NdisFSendNetBufferListsComplete",
    S2 => "only NBLs received in FilterSendNetBufferLists are completed up",
    S3 => "own sends come back in FilterSendNetBufferListsComplete and are never completed up",
    S4 => "after NdisFSendNetBufferLists the filter does not touch those NBLs until they complete",
    S5 => "changes to a foreign NBL are undone before completing it; NB and MDL links are never altered",
    S6 => "NET_BUFFER_LIST_STATUS is set on every NBL the filter completes itself",
    S7 => "DISPATCH_LEVEL flags match the IRQL; send and send-complete flags are different sets",
    S8 => "NDIS_SEND_FLAGS_CHECK_FOR_LOOPBACK is preserved when passing a send down",
    S9 => "outside Running, sends are completed with NDIS_STATUS_PAUSED and none is originated",
    S10 => "a filter that queues sends handles cancellation",
    S11 => "a filter without a send-complete handler may not call NdisFSendNetBufferLists",
    ST1 => "module states follow Detached-Attaching-Paused-Restarting-Running-Pausing-Paused-Detached",
    ST2 => "FilterAttach calls NdisFSetAttributes, does no I/O, and frees everything if it fails",
    ST3 => "a pended pause is completed exactly once, within 10 s",
    ST4 => "pause completes only when queued and originated NBLs are all back",
    ST5 => "a pended restart is completed once, at PASSIVE_LEVEL",
    ST6 => "OID requests only in Paused, Restarting, Running or Pausing",
    ST7 => "FilterDetach only when Paused; it frees pools and contexts; the handle is dead afterwards",
    ST8 => "the filter is ready for callbacks as soon as NdisFRegisterFilterDriver is called",
    ST9 => "unload deregisters the filter driver, holding no NBLs",
    N1 => "NBLs and NBs come from NDIS pools",
    N2 => "NdisAllocateNetBufferAndNetBufferList: NB pool, DataSize 0, aligned context, empty MDL means no data",
    N3 => "pool parameters carry a valid header, ProtocolId 0, DataSize only with fAllocateNetBuffer",
    N4 => "send NBLs have at least one NB, one frame each, with an unsplit MAC header",
    N5 => "NET_BUFFER offsets and lengths are consistent with its MDL chain",
    N6 => "headroom changes only through NdisRetreat/AdvanceNetBufferDataStart",
    N7 => "NdisFreeNetBufferList only on own NBLs held now; a pool is freed only when empty",
    N8 => "NBL contexts are freed before the NBL",
    N9 => "a parent NBL is not released while children exist",
    N10 => "injected frames carry no offload information unless requested",
    N11 => "NetBufferListInfo slots beyond the driver's NDIS version are never touched",
    L1 => "datapath and allocation calls at IRQL <= DISPATCH_LEVEL",
    L2 => "registration, attributes, restart completion and device registration at PASSIVE_LEVEL",
    L3 => "spin locks are allocated before use; Dpr variants only at DISPATCH_LEVEL and paired",
    L4 => "no recursive acquire, no release without acquire, every lock released before returning",
    L5 => "no spin lock held while calling out of the driver; locks released in LIFO order",
    D1 => "NdisRegisterDeviceEx at PASSIVE with valid attributes",
    D2 => "unload deregisters every device",
    D3 => "every IRP is completed exactly once, at <= DISPATCH_LEVEL",
    D4 => "IoMarkIrpPending if and only if STATUS_PENDING is returned",
    D5 => "cancel routines follow the documented protocol",
    D6 => "IRP_MJ_CLEANUP completes every queued IRP of its file object",
    D7 => "IOCTL buffers and lengths are respected",
    D8 => "read/write buffering is explicit and Information <= Length",
    D9 => "the device has a DefaultSDDLString and refuses named opens",
    O1 => "FilterOidRequest completes synchronously or pends and completes once; forwarding uses a clone",
    O2 => "on completion: copy the counts back, free the clone, then complete the original",
    O3 => "one OID at a time per module; BytesWritten within the buffer",
    K1 => "pool memory is freed once, with its tag, and nothing is leaked at unload (bug check 0xC2/0xC4)",
}

impl fmt::Debug for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.id())
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.id())
    }
}

/// One broken rule: what, where (the driver callback or sim operation in progress), and a
/// precise message.
#[derive(Clone, PartialEq, Eq)]
pub struct Violation {
    pub rule: Rule,
    pub context: String,
    pub message: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} [{}] {}", self.rule, self.context, self.message)
    }
}

impl fmt::Debug for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Settings for the rules whose documentation is unclear (⚠ in ndis-rules.md) or that the
/// documentation words as "should". Every default is the strict reading.
#[derive(Clone, Debug)]
pub struct Strictness {
    /// R12/S9 ⚠: may a filter pass on or originate traffic while Restarting? The rules file
    /// says Running only; the NdisFRestartComplete reference says a filter "can resume
    /// indicating received network data immediately after NDIS calls FilterRestart". The
    /// documented reading is the default (allowed); `false` enforces Running only.
    pub datapath_while_restarting: bool,
    /// "Pausing a filter module": a Pausing filter *should* complete new sends with
    /// NDIS_STATUS_PAUSED and return new receives instead of passing them on. Work that was
    /// already in progress when the pause began (a driver call that started while Running)
    /// may finish; *new* work passed on while Pausing is a violation of S9/R12 unless this
    /// is set. (default: violation)
    pub pass_through_while_pausing: bool,
    /// ST7: memory allocated with a module's handle must be freed by FilterDetach (the
    /// handle is dead afterwards). (default: yes)
    pub module_memory_freed_at_detach: bool,
    /// ST3: how long a pended pause may take before the simulator calls it a hang.
    pub pause_timeout: std::time::Duration,
    /// D3: how long a test may wait for an IRP before the simulator calls it a hang.
    pub irp_timeout: std::time::Duration,
    /// D3: an IRP still pending after the machine has had nothing left to do (no send to
    /// complete, no receive to return, no OID to finish) for this long will never complete:
    /// the thread waiting for it hangs, as the seed's writer did.
    pub irp_idle_timeout: std::time::Duration,
}

impl Default for Strictness {
    fn default() -> Self {
        Strictness {
            datapath_while_restarting: true,
            pass_through_while_pausing: false,
            module_memory_freed_at_detach: true,
            pause_timeout: std::time::Duration::from_secs(10),
            irp_timeout: std::time::Duration::from_secs(10),
            irp_idle_timeout: std::time::Duration::from_millis(300),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_rule_of_the_rules_file_is_known() {
        // The families and counts of ../shared/ndis-rules.md, plus K1 (kernel pool).
        let count = |prefix: &str| {
            Rule::ALL
                .iter()
                .filter(|r| {
                    let id = r.id();
                    id.starts_with(prefix) && id[prefix.len()..].chars().all(|c| c.is_ascii_digit())
                })
                .count()
        };
        assert_eq!(count("R"), 13);
        assert_eq!(count("S"), 11);
        assert_eq!(count("ST"), 9);
        assert_eq!(count("N"), 11);
        assert_eq!(count("L"), 5);
        assert_eq!(count("D"), 9);
        assert_eq!(count("O"), 3);
        assert_eq!(format!("{:?}", Rule::R6), "R6");
    }
}
