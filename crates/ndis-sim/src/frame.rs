//! Ethernet frames for tests: deterministic, each one distinct and self-describing.

/// An Ethernet II frame: destination, source, EtherType, payload.
pub fn ethernet_frame(dst: [u8; 6], src: [u8; 6], ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(14 + payload.len());
    f.extend_from_slice(&dst);
    f.extend_from_slice(&src);
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// A source of distinct test frames (sizes from 60 to 1514 bytes, payload carrying a
/// sequence number and a pattern derived from it, EtherType 0x88B5 "local experimental").
pub struct TestFrames {
    pub src: [u8; 6],
    pub dst: [u8; 6],
    seq: u32,
}

impl TestFrames {
    pub fn new(src: [u8; 6], dst: [u8; 6]) -> TestFrames {
        TestFrames { src, dst, seq: 0 }
    }

    /// The next `n` frames.
    pub fn take(&mut self, n: usize) -> Vec<Vec<u8>> {
        (0..n).map(|_| self.next_frame()).collect()
    }

    /// The next frame.
    pub fn next_frame(&mut self) -> Vec<u8> {
        self.seq += 1;
        let s = self.seq;
        // Sizes cycle through small, odd and full-size frames.
        let total = [60usize, 61, 64, 128, 333, 512, 1000, 1514][(s % 8) as usize];
        let mut payload = Vec::with_capacity(total - 14);
        payload.extend_from_slice(&s.to_be_bytes());
        while payload.len() < total - 14 {
            let i = payload.len() as u32;
            payload.push((i.wrapping_mul(31) ^ s) as u8);
        }
        ethernet_frame(self.dst, self.src, 0x88B5, &payload)
    }
}
