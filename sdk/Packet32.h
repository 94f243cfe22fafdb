/*
 * Packet32.h: the Packet API of rxinject's Packet.dll, for C programs and for building
 * upstream libpcap (pcap-npf.c) against it.
 *
 * Written for rxinject from the API's documented behaviour: the names, structures and
 * values are those callers of the Packet API (libpcap, libdnet) use, laid out as on
 * Windows x64. crates/rxinject-packet/src/layout.rs is the same contract in Rust, and the
 * Wine test compiles this header and checks its sizes and offsets.
 *
 * SPDX-License-Identifier: MIT OR Apache-2.0
 */
#ifndef RXINJECT_PACKET32_H
#define RXINJECT_PACKET32_H

#include <winsock2.h>
#include <windows.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Which Packet API this is: Npcap's, as far as libpcap can tell. (libpcap's build finds
 * PacketGetTimestampModes, PacketGetInfo and PacketIsLoopbackAdapter in the library itself
 * and defines its HAVE_PACKET_* macros.) */
#define HAVE_NPCAP_PACKET_API

/* ---- BPF, unless libpcap's <pcap/bpf.h> has declared it already ---- */
#ifndef lib_pcap_bpf_h
struct bpf_insn {
    USHORT code;
    UCHAR jt;
    UCHAR jf;
    ULONG k;
};

struct bpf_program {
    UINT bf_len;
    struct bpf_insn *bf_insns;
};
#endif

/* Counters of PacketGetStats / PacketGetStatsEx. */
struct bpf_stat {
    UINT bs_recv;   /* frames the adapter passed the driver */
    UINT bs_drop;   /* frames lost for want of room in the kernel buffer */
    UINT ps_ifdrop; /* frames the interface dropped (0: not known) */
    UINT bs_capt;   /* frames that passed the filter and found room */
};

/* The header before each frame PacketReceivePacket returns. */
struct bpf_hdr {
    struct timeval bh_tstamp; /* seconds and microseconds (nanoseconds in PACKET_MODE_NANO) since 1970 */
    UINT bh_caplen;           /* bytes of the frame that follow */
    UINT bh_datalen;          /* bytes of the frame on the wire */
    USHORT bh_hdrlen;         /* bytes of this header: the frame starts there */
};

/* The header before each frame of a send queue (PacketSendPackets). */
struct dump_bpf_hdr {
    struct timeval ts;
    UINT caplen;
    UINT len;
};

/* Records of a read start at multiples of sizeof(int). */
#define Packet_ALIGNMENT sizeof(int)
#define Packet_WORDALIGN(x) (((x) + (Packet_ALIGNMENT - 1)) & ~(Packet_ALIGNMENT - 1))

/* ---- Modes (PacketSetMode) ---- */
#define PACKET_MODE_CAPT 0x0
#define PACKET_MODE_STAT 0x1           /* refused by rxinject */
#define PACKET_MODE_MON 0x2            /* refused */
#define PACKET_MODE_DUMP 0x10          /* refused */
#define PACKET_MODE_STAT_DUMP (PACKET_MODE_DUMP | PACKET_MODE_STAT)
#define PACKET_MODE_SENDTORX (1 << 8)        /* frames sent go up the receive path */
#define PACKET_MODE_SENDTORX_CLEAR (1 << 9)  /* ... to the wire, whatever the registry says */
#define PACKET_MODE_NANO (1 << 10)           /* nanosecond timestamps */

/* PacketSetLoopbackBehavior */
#define NPF_DISABLE_LOOPBACK 1
#define NPF_ENABLE_LOOPBACK 2

/* PacketSetTimestampMode / PacketGetTimestampModes */
#define TIMESTAMPMODE_SINGLE_SYNCHRONIZATION 0
#define TIMESTAMPMODE_QUERYSYSTEMTIME 2
#define TIMESTAMPMODE_QUERYSYSTEMTIME_PRECISE 4

/* PacketGetInfo */
#define NPF_GETINFO_VERSION 0x00000001
#define NPF_GETINFO_CONFIG 0x00000002
#define NPF_CONFIG_INJECT 0x02
#define NPF_CONFIG_ADMINONLY 0x04
#define NPF_GETINFO_BPFEXT 0x00000003

/* Medium values of NetType.LinkType beyond NDIS's (none is rxinject's). */
#define NdisMediumNull -1
#define NdisMediumCHDLC -2
#define NdisMediumPPPSerial -3
#define NdisMediumBare80211 -4
#define NdisMediumRadio80211 -5
#define NdisMediumPpi -6

#define MAX_LINK_NAME_LENGTH 64
#define ADAPTER_NAME_LENGTH (256 + 12)
#define ADAPTER_DESC_LENGTH 128
#define MAX_MAC_ADDR_LENGTH 8
#define MAX_NETWORK_ADDRESSES 16
#define NMAX_PACKET 65535

/* ADAPTER.Flags */
#define INFO_FLAG_NDIS_ADAPTER 0
#define INFO_FLAG_NDISWAN_ADAPTER 1
#define INFO_FLAG_DAG_CARD 2
#define INFO_FLAG_DAG_FILE 6
#define INFO_FLAG_DONT_EXPORT 8
#define INFO_FLAG_AIRPCAP_CARD 16
#define INFO_FLAG_NPFIM_DEVICE 32
#define INFO_FLAG_MASK_NOT_NPF 0xff
#define INFO_FLAG_NPCAP_LOOPBACK 0x100
#define INFO_FLAG_NPCAP_DOT11 0x200

/* The medium and speed of an adapter (PacketGetNetType). */
typedef struct NetType {
    UINT LinkType;        /* an NDIS_MEDIUM */
    ULONGLONG LinkSpeed;  /* bits per second */
} NetType;

/* One address of an adapter (PacketGetNetInfoEx). */
typedef struct npf_if_addr {
    struct sockaddr_storage IPAddress;
    struct sockaddr_storage SubnetMask;
    struct sockaddr_storage Broadcast;
} npf_if_addr;

typedef struct WAN_ADAPTER_INT WAN_ADAPTER;
typedef WAN_ADAPTER *PWAN_ADAPTER;
typedef struct _AirpcapHandle *PAirpcapHandle;

/* An open adapter. Callers read hFile and Flags; the rest is the DLL's. */
typedef struct _ADAPTER {
    HANDLE hFile;
    CHAR SymbolicLink[MAX_LINK_NAME_LENGTH];
    int NumWrites;          /* times PacketSendPacket sends each frame */
    HANDLE ReadEvent;       /* set when data is waiting (PacketGetReadEvent) */
    UINT ReadTimeOut;       /* milliseconds; -1: do not wait; 0: wait for data */
    CHAR Name[ADAPTER_NAME_LENGTH];
    PWAN_ADAPTER pWanAdapter;
    UINT Flags;
} ADAPTER, *LPADAPTER;

/* A caller's buffer for PacketReceivePacket and PacketSendPacket. */
typedef struct _PACKET {
    HANDLE hEvent;          /* unused */
    OVERLAPPED OverLapped;  /* unused */
    PVOID Buffer;
    UINT Length;
    DWORD ulBytesReceived;
    BOOLEAN bIoComplete;    /* unused */
} PACKET, *LPPACKET;

/* An OID request (PacketRequest, PacketGetInfo): Length bytes of Data. */
typedef struct _PACKET_OID_DATA {
    ULONG Oid;
    ULONG Length;
    UCHAR Data[1];
} PACKET_OID_DATA, *PPACKET_OID_DATA;

#define PACKET_OID_DATA_LENGTH(_DataLength) (FIELD_OFFSET(PACKET_OID_DATA, Data) + (_DataLength))

/* The DLL's version string (exported data). */
extern __declspec(dllimport) char PacketLibraryVersion[64];

LPCSTR PacketGetVersion(void);
LPCSTR PacketGetDriverVersion(void);
LPCSTR PacketGetDriverName(void);
BOOLEAN PacketGetAdapterNames(PCHAR pStr, PULONG BufferSize);
BOOLEAN PacketGetNetInfoEx(PCCH AdapterName, npf_if_addr *buffer, PLONG NEntries);
LPADAPTER PacketOpenAdapter(PCCH AdapterName);
VOID PacketCloseAdapter(LPADAPTER lpAdapter);
LPPACKET PacketAllocatePacket(void);
VOID PacketInitPacket(LPPACKET lpPacket, PVOID Buffer, UINT Length);
VOID PacketFreePacket(LPPACKET lpPacket);
BOOLEAN PacketReceivePacket(LPADAPTER AdapterObject, LPPACKET lpPacket, BOOLEAN Sync);
BOOLEAN PacketSendPacket(LPADAPTER AdapterObject, LPPACKET pPacket, BOOLEAN Sync);
INT PacketSendPackets(LPADAPTER AdapterObject, PVOID PacketBuff, ULONG Size, BOOLEAN Sync);
BOOLEAN PacketSetNumWrites(LPADAPTER AdapterObject, int nwrites);
BOOLEAN PacketSetMinToCopy(LPADAPTER AdapterObject, int nbytes);
BOOLEAN PacketSetReadTimeout(LPADAPTER AdapterObject, int timeout);
BOOLEAN PacketSetBuff(LPADAPTER AdapterObject, int dim);
BOOLEAN PacketSetBpf(LPADAPTER AdapterObject, struct bpf_program *fp);
INT PacketSetSnapLen(LPADAPTER AdapterObject, int snaplen);
BOOLEAN PacketGetStats(LPADAPTER AdapterObject, struct bpf_stat *s);
BOOLEAN PacketGetStatsEx(LPADAPTER AdapterObject, struct bpf_stat *s);
BOOLEAN PacketGetNetType(LPADAPTER AdapterObject, NetType *type);
BOOLEAN PacketSetHwFilter(LPADAPTER AdapterObject, ULONG Filter);
BOOLEAN PacketRequest(LPADAPTER AdapterObject, BOOLEAN Set, PPACKET_OID_DATA OidData);
BOOLEAN PacketGetInfo(LPADAPTER AdapterObject, PPACKET_OID_DATA OidData);
HANDLE PacketGetReadEvent(LPADAPTER AdapterObject);
BOOLEAN PacketSetMode(LPADAPTER AdapterObject, int mode);
BOOLEAN PacketSetLoopbackBehavior(LPADAPTER AdapterObject, UINT LoopbackBehavior);
BOOLEAN PacketGetTimestampModes(LPADAPTER AdapterObject, PULONG pModes);
BOOLEAN PacketSetTimestampMode(LPADAPTER AdapterObject, ULONG mode);
BOOLEAN PacketIsLoopbackAdapter(PCCH AdapterName);
int PacketIsMonitorModeSupported(PCCH AdapterName);
int PacketSetMonitorMode(PCCH AdapterName, int mode);
int PacketGetMonitorMode(PCCH AdapterName);
BOOLEAN PacketSetDumpName(LPADAPTER AdapterObject, void *name, int len);
BOOLEAN PacketSetDumpLimits(LPADAPTER AdapterObject, UINT maxfilesize, UINT maxnpacks);
BOOLEAN PacketIsDumpEnded(LPADAPTER AdapterObject, BOOLEAN sync);
PAirpcapHandle PacketGetAirPcapHandle(LPADAPTER AdapterObject);
BOOL PacketStopDriver(void);
BOOL PacketStopDriver60(void);

#ifdef __cplusplus
}
#endif

#endif /* RXINJECT_PACKET32_H */
