/*
 * A Windows program that uses Packet.dll as libpcap's pcap-npf.c does, linked against the
 * DLL with our SDK header (sdk/Packet32.h). Run under Wine by tests/wine.rs, against a
 * simulator `rxinject sim serve` runs on loopback (the DLL's test build reaches it through
 * RXINJECT_SIM), with SendToRxAdapters set in Wine's registry. It checks the layouts, the
 * calling convention, that the read event is a real Win32 event (WaitForSingleObject,
 * SetEvent as pcap_breakloop), and that a frame sent goes up the receive path by the
 * registry setting and comes back in capture with the host stack's answer.
 *
 * With the argument "nodriver", against the shipped DLL on a machine without rxinject: the
 * device cannot be opened, and every function says so as Npcap's do when their driver is
 * missing.
 *
 * Prints "PASS" and exits 0 when every check holds; otherwise prints what failed, exits 1.
 */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "Packet32.h"

_Static_assert(sizeof(ADAPTER) == 376, "ADAPTER");
_Static_assert(offsetof(ADAPTER, NumWrites) == 72, "ADAPTER.NumWrites");
_Static_assert(offsetof(ADAPTER, ReadEvent) == 80, "ADAPTER.ReadEvent");
_Static_assert(offsetof(ADAPTER, Name) == 92, "ADAPTER.Name");
_Static_assert(offsetof(ADAPTER, Flags) == 368, "ADAPTER.Flags");
_Static_assert(sizeof(PACKET) == 64, "PACKET");
_Static_assert(offsetof(PACKET, Buffer) == 40, "PACKET.Buffer");
_Static_assert(offsetof(PACKET, ulBytesReceived) == 52, "PACKET.ulBytesReceived");
_Static_assert(sizeof(struct bpf_hdr) == 20, "bpf_hdr");
_Static_assert(sizeof(struct dump_bpf_hdr) == 16, "dump_bpf_hdr");
_Static_assert(sizeof(struct bpf_stat) == 16, "bpf_stat");
_Static_assert(offsetof(PACKET_OID_DATA, Data) == 8, "PACKET_OID_DATA");
_Static_assert(sizeof(NetType) == 16, "NetType");
_Static_assert(sizeof(npf_if_addr) == 384, "npf_if_addr");

static int failures;

#define CHECK(cond, ...)                                                   \
    do {                                                                   \
        if (!(cond)) {                                                     \
            printf("FAIL line %d: %s (error %lu): ", __LINE__, #cond,      \
                   (unsigned long)GetLastError());                         \
            printf(__VA_ARGS__);                                           \
            printf("\n");                                                  \
            failures++;                                                    \
        }                                                                  \
    } while (0)

/* An ARP request from 192.168.77.2 for the simulated host 192.168.77.1. */
static unsigned char arp_request[42] = {
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0x00, 0x00, 0x00, 0x00, 0x99, 0x08, 0x06,
    0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x01, 0x02, 0x00, 0x00, 0x00, 0x00, 0x99,
    192, 168, 77, 2, 0, 0, 0, 0, 0, 0, 192, 168, 77, 1,
};

static int no_driver(void)
{
    char names[256];
    ULONG len = sizeof(names);
    CHECK(!PacketGetAdapterNames(names, &len) && GetLastError() == ERROR_FILE_NOT_FOUND, "names");
    CHECK(PacketOpenAdapter("\\Device\\NPF_{00000000-5349-4D00-8000-00000000000A}") == NULL &&
              GetLastError() == ERROR_FILE_NOT_FOUND,
          "open");
    CHECK(strcmp(PacketGetDriverVersion(), "unknown") == 0, "driver version %s", PacketGetDriverVersion());
    CHECK(!PacketStopDriver(), "stop");
    if (failures) {
        printf("%d checks failed\n", failures);
        return 1;
    }
    printf("PASS\n");
    return 0;
}

int main(int argc, char **argv)
{
    char names[8192];
    ULONG len = 0;
    char *name, *desc;
    LPADAPTER a;
    ULONG modes[4];
    struct bpf_insn all = {0x06, 0, 0, 262144};
    struct bpf_program prog = {1, &all};
    LPPACKET p;
    HANDLE ev;
    static unsigned char buf[256000];
    int got_request = 0, got_reply = 0, rounds;
    struct bpf_stat st;
    PACKET recv;

    if (argc > 1 && strcmp(argv[1], "nodriver") == 0)
        return no_driver();
    printf("version %s, driver %s (%s), library data %s\n", PacketGetVersion(),
           PacketGetDriverVersion(), PacketGetDriverName(), PacketLibraryVersion);
    CHECK(strncmp(PacketGetVersion(), "rxinject", 8) == 0, "version");

    /* pcap_findalldevs */
    CHECK(!PacketGetAdapterNames(NULL, &len), "no buffer");
    CHECK(GetLastError() == ERROR_INSUFFICIENT_BUFFER && len > 2 && len < sizeof(names), "size %lu", len);
    len = sizeof(names);
    CHECK(PacketGetAdapterNames(names, &len), "names");
    name = names;
    desc = names;
    while (*desc || desc[1])
        desc++;
    desc += 2;
    printf("adapter %s: %s\n", name, desc);
    CHECK(strncmp(name, "\\Device\\NPF_{", 13) == 0, "%s", name);

    /* pcap_activate */
    a = PacketOpenAdapter(name);
    CHECK(a != NULL, "open %s", name);
    if (a == NULL)
        return 1;
    CHECK(a->hFile != NULL && a->hFile != INVALID_HANDLE_VALUE, "hFile");
    CHECK(!(a->Flags & INFO_FLAG_DAG_CARD), "flags %u", a->Flags);
    modes[0] = 4;
    CHECK(PacketGetTimestampModes(a, modes) && modes[0] == 1 && modes[1] == TIMESTAMPMODE_QUERYSYSTEMTIME_PRECISE,
          "modes %lu", modes[0]);
    CHECK(PacketSetMode(a, PACKET_MODE_NANO), "nano");
    CHECK(PacketSetHwFilter(a, 0x20), "promiscuous");
    CHECK(PacketSetBuff(a, 1000000), "buffer");
    CHECK(PacketSetMinToCopy(a, 0), "immediate");
    CHECK(PacketSetBpf(a, &prog), "snapshot program");
    CHECK(PacketSetReadTimeout(a, 0), "timeout");
    CHECK(!PacketSetMode(a, PACKET_MODE_STAT) && GetLastError() == ERROR_NOT_SUPPORTED, "statistics mode refused");

    /* The read event is a real event: set (pcap_breakloop) and reset by a read. */
    ev = PacketGetReadEvent(a);
    CHECK(ev != NULL, "event");
    CHECK(SetEvent(ev), "SetEvent on the read event");
    memset(&recv, 0, sizeof(recv));
    PacketInitPacket(&recv, buf, sizeof(buf));
    CHECK(PacketReceivePacket(a, &recv, TRUE) && recv.ulBytesReceived == 0, "a break returns nothing (%lu)",
          (unsigned long)recv.ulBytesReceived);
    CHECK(WaitForSingleObject(ev, 0) == WAIT_TIMEOUT, "the read reset the event");

    /* SendToRxAdapters names this adapter: the frame goes up, the stack answers. */
    p = PacketAllocatePacket();
    PacketInitPacket(p, arp_request, sizeof(arp_request));
    CHECK(PacketSendPacket(a, p, TRUE), "send");
    PacketFreePacket(p);
    for (rounds = 0; rounds < 100 && !(got_request && got_reply); rounds++) {
        DWORD at = 0;
        if (WaitForSingleObject(ev, 10000) != WAIT_OBJECT_0) {
            CHECK(0, "no data for 10 s");
            break;
        }
        PacketInitPacket(&recv, buf, sizeof(buf));
        CHECK(PacketReceivePacket(a, &recv, TRUE), "receive");
        while (at < recv.ulBytesReceived) {
            struct bpf_hdr *h = (struct bpf_hdr *)(buf + at);
            unsigned char *f = buf + at + h->bh_hdrlen;
            CHECK(h->bh_hdrlen == sizeof(struct bpf_hdr), "hdrlen %u", h->bh_hdrlen);
            CHECK(h->bh_tstamp.tv_usec >= 0 && h->bh_tstamp.tv_usec < 1000000000, "nanoseconds");
            if (h->bh_caplen == 42 && memcmp(f, arp_request, 42) == 0)
                got_request = 1;
            if (h->bh_caplen >= 42 && f[12] == 0x08 && f[13] == 0x06 && f[21] == 2 && f[28] == 192 && f[31] == 1)
                got_reply = 1;
            at += Packet_WORDALIGN(h->bh_hdrlen + h->bh_caplen);
        }
    }
    CHECK(got_request, "the request, captured inbound");
    CHECK(got_reply, "the host stack's ARP reply: the frame went up the receive path");

    CHECK(PacketGetStats(a, &st) && st.bs_recv >= 2 && st.bs_capt >= 2, "stats %u %u", st.bs_recv, st.bs_capt);
    PacketCloseAdapter(a);

    if (failures) {
        printf("%d checks failed\n", failures);
        return 1;
    }
    printf("PASS\n");
    return 0;
}
