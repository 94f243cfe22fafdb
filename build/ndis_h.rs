//! The copy of the WDK's `ndis.h` that bindgen reads in the eWDK build (build.rs), and the
//! one fix it needs.
//!
//! `ndis.h` checks the NDIS version a driver declares with a macro that pastes `0x` onto
//! each argument, `((((0x ## major) << 8) + (0x ## minor)) >= NDIS_MIN_API)`, and calls it
//! with other macros as arguments: `NDIS_API_VERSION_AVAILABLE(NDIS_FILTER_MAJOR_VERSION,
//! NDIS_FILTER_MINOR_VERSION)`. A conforming preprocessor does not expand an argument next
//! to `##` (C17 6.10.3.1), so clang pastes `0xNDIS_FILTER_MAJOR_VERSION` and stops with
//! "invalid suffix on integer constant". MSVC's preprocessor expands the argument first and
//! computes `(0x6 << 8) + 0x50` for NDIS 6.50.
//!
//! The copy does what MSVC computes: the macro's own definition is kept under another name,
//! and `NDIS_API_VERSION_AVAILABLE` forwards its arguments to it. An argument that is not
//! next to `#` or `##` is expanded before it is substituted, so the pasting macro receives
//! `6` and `50`. Nothing else in the file changes, and a `#line` directive after the two
//! definitions keeps clang's diagnostics at the original file's line numbers.
//!
//! Plain `std`, shared by build.rs and its test (`xtask/tests/ewdk.rs`, which compiles a
//! header of the same shape with clang).

/// The name the rewritten copy gives the original, pasting definition.
pub const PASTING_MACRO: &str = "RXINJECT_NDIS_API_VERSION_AVAILABLE_PASTE";

/// The macro that needs the fix.
const MACRO: &str = "NDIS_API_VERSION_AVAILABLE";

/// Rewrites `ndis_h` (the text of the WDK's `ndis.h`, read from `original_path`).
///
/// Returns `Ok(None)` when no definition of `NDIS_API_VERSION_AVAILABLE` pastes its
/// arguments (a header that needs no fix is used as it is), and an error when a definition
/// cannot be parsed.
pub fn rewrite(ndis_h: &str, original_path: &str) -> Result<Option<String>, String> {
    let lines: Vec<&str> = ndis_h.split_inclusive('\n').collect();
    let mut out = String::with_capacity(ndis_h.len() + 512);
    let mut changed = false;
    let mut i = 0;
    while i < lines.len() {
        // A directive continues onto the next physical line after a trailing backslash.
        let mut end = i;
        while end + 1 < lines.len() && content(lines[end]).ends_with('\\') {
            end += 1;
        }
        let logical: String = lines[i..=end]
            .iter()
            .map(|l| content(l).strip_suffix('\\').unwrap_or(content(l)))
            .collect::<Vec<_>>()
            .join(" ");
        match parse_definition(&logical)? {
            Some((params, body)) if body.contains("##") => {
                let eol = if lines[end].ends_with("\r\n") {
                    "\r\n"
                } else {
                    "\n"
                };
                let args = params.join(",");
                out.push_str(&format!("#define {PASTING_MACRO}({args}) {body}{eol}"));
                out.push_str(&format!("#define {MACRO}({args}) {PASTING_MACRO}({args}){eol}"));
                // The line after the definition keeps its original number.
                out.push_str(&format!("#line {} \"{}\"{eol}", end + 2, c_string(original_path)));
                changed = true;
            }
            _ => lines[i..=end].iter().for_each(|l| out.push_str(l)),
        }
        i = end + 1;
    }
    Ok(changed.then_some(out))
}

/// A line without its line ending.
fn content(line: &str) -> &str {
    line.trim_end_matches(['\r', '\n'])
}

/// `#define NDIS_API_VERSION_AVAILABLE(a, b) body` as (`[a, b]`, `body`); `None` for any
/// other line.
fn parse_definition(line: &str) -> Result<Option<(Vec<String>, String)>, String> {
    let Some(rest) = line.trim_start().strip_prefix('#') else {
        return Ok(None);
    };
    let Some(rest) = rest.trim_start().strip_prefix("define") else {
        return Ok(None);
    };
    if !rest.starts_with([' ', '\t']) {
        return Ok(None);
    }
    let Some(rest) = rest.trim_start().strip_prefix(MACRO) else {
        return Ok(None);
    };
    // A function-like macro has its parenthesis right after the name.
    let Some(rest) = rest.strip_prefix('(') else {
        return if rest.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_') {
            Ok(None) // a longer name
        } else {
            Err(format!("ndis.h defines {MACRO} as an object-like macro: {line}"))
        };
    };
    let (params, body) = rest
        .split_once(')')
        .ok_or_else(|| format!("ndis.h: unterminated parameter list of {MACRO}: {line}"))?;
    let params: Vec<String> = params.split(',').map(|p| p.trim().to_string()).collect();
    let valid = |p: &String| {
        !p.is_empty()
            && p.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            && !p.starts_with(|c: char| c.is_ascii_digit())
    };
    if !params.iter().all(valid) {
        return Err(format!("ndis.h: unexpected parameters of {MACRO}: {line}"));
    }
    Ok(Some((params, body.trim().to_string())))
}

/// `s` as the contents of a C string literal (Windows paths have backslashes).
pub fn c_string(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}
