//! The Windows guide and the README tell testers the names the DLL really uses: the
//! registry key and value of SendToRx, the mode values, and the SDK header's path.

use packet::layout::mode;
use packet::os::{PARAMETERS_KEY, SEND_TO_RX_VALUE};

fn read(path: &str) -> String {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(path);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

#[test]
fn the_guides_name_the_registry_value_and_modes_the_dll_uses() {
    for doc in ["docs/WINDOWS-TESTING.md", "README.md"] {
        let text = read(doc);
        assert!(
            text.contains(&format!("HKLM\\{PARAMETERS_KEY}")),
            "{doc}: the key"
        );
        assert!(text.contains(SEND_TO_RX_VALUE), "{doc}: the value");
        assert!(
            text.contains("sdk/Packet32.h") || text.contains("sdk\\Packet32.h"),
            "{doc}: the header"
        );
    }
    let guide = read("docs/WINDOWS-TESTING.md");
    assert!(
        guide.contains(&format!("{:#x}", mode::SENDTORX))
            && guide.contains(&format!("{:#x}", mode::SENDTORX_CLEAR))
    );
    let header = read("sdk/Packet32.h");
    for (name, v) in [
        ("PACKET_MODE_SENDTORX (1 << 8)", mode::SENDTORX),
        ("PACKET_MODE_SENDTORX_CLEAR (1 << 9)", mode::SENDTORX_CLEAR),
        ("PACKET_MODE_NANO (1 << 10)", mode::NANO),
    ] {
        assert!(header.contains(name), "{name}");
        assert_eq!(
            v,
            1 << name
                .split("<< ")
                .nth(1)
                .unwrap()
                .trim_end_matches(')')
                .parse::<u32>()
                .unwrap()
        );
    }
}
