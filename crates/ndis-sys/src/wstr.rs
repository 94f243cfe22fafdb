//! Compile-time UTF-16 strings for `UNICODE_STRING`s built from ASCII constants.

use crate::wdm::UNICODE_STRING;

/// Converts an ASCII string to a UTF-16 array of exactly `N` units, at compile time.
/// A non-ASCII byte or a length other than `N` fails const evaluation.
pub const fn ascii_to_utf16<const N: usize>(s: &str) -> [u16; N] {
    let bytes = s.as_bytes();
    assert!(
        bytes.len() == N,
        "length of the UTF-16 array must equal the string's"
    );
    let mut out = [0u16; N];
    let mut i = 0;
    while i < N {
        assert!(bytes[i].is_ascii(), "only ASCII is converted");
        out[i] = bytes[i] as u16;
        i += 1;
    }
    out
}

/// A `UNICODE_STRING` over a static UTF-16 array (lengths in bytes, no terminator).
pub fn unicode_string(units: &'static [u16]) -> UNICODE_STRING {
    let bytes = units.len() * 2;
    assert!(bytes <= u16::MAX as usize, "UNICODE_STRING length is 16 bits");
    UNICODE_STRING {
        Length: bytes as u16,
        MaximumLength: bytes as u16,
        // NDIS only reads through this pointer (`_In_` parameters).
        Buffer: units.as_ptr().cast_mut(),
    }
}

/// Declares a `static [u16; N]` holding an ASCII string as UTF-16.
#[macro_export]
macro_rules! utf16_static {
    ($vis:vis static $name:ident = $s:expr;) => {
        $vis static $name: [u16; $s.len()] = $crate::wstr::ascii_to_utf16::<{ $s.len() }>($s);
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    utf16_static!(static NAME = "rxinject";);

    #[test]
    fn converts_ascii() {
        assert_eq!(NAME.len(), 8);
        assert_eq!(NAME[0], u16::from(b'r'));
        let s = unicode_string(&NAME);
        assert_eq!(s.Length, 16);
        assert_eq!(s.MaximumLength, 16);
    }
}
