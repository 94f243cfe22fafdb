//! A reader for INF files, enough to check ours: sections in order, lines split into a key and
//! comma-separated values (quotes removed, `;` comments dropped), and `%strkey%` expansion from
//! `[Strings]`. Section names and keys compare case-insensitively, as Windows does.

/// One line of a section.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Line {
    /// The text left of `=`, if there is one.
    pub key: Option<String>,
    /// The comma-separated values (right of `=`, or the whole line).
    pub values: Vec<String>,
}

/// A parsed INF.
#[derive(Clone, Debug, Default)]
pub struct Inf {
    pub sections: Vec<(String, Vec<Line>)>,
}

/// Removes a `;` comment (outside quotes).
fn strip_comment(line: &str) -> &str {
    let mut quoted = false;
    for (i, c) in line.char_indices() {
        match c {
            '"' => quoted = !quoted,
            ';' if !quoted => return &line[..i],
            _ => {}
        }
    }
    line
}

/// Splits on commas outside quotes, trims, and removes the quotes.
fn split_values(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    for c in s.chars() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => out.push(std::mem::take(&mut cur).trim().to_string()),
            _ => cur.push(c),
        }
    }
    out.push(cur.trim().to_string());
    out
}

/// Parses INF text.
pub fn parse(text: &str) -> Result<Inf, String> {
    let mut inf = Inf::default();
    for (n, raw) in text.lines().enumerate() {
        let line = strip_comment(raw).trim();
        if line.is_empty() {
            continue;
        }
        if let Some(name) = line.strip_prefix('[') {
            let name = name
                .strip_suffix(']')
                .ok_or_else(|| format!("line {}: unterminated section name", n + 1))?;
            inf.sections.push((name.trim().to_string(), Vec::new()));
            continue;
        }
        let Some((_, lines)) = inf.sections.last_mut() else {
            return Err(format!("line {}: text before the first section", n + 1));
        };
        // `key = values` unless the `=` is inside quotes.
        let eq = {
            let mut quoted = false;
            line.char_indices().find_map(|(i, c)| match c {
                '"' => {
                    quoted = !quoted;
                    None
                }
                '=' if !quoted => Some(i),
                _ => None,
            })
        };
        match eq {
            Some(i) => lines.push(Line {
                key: Some(line[..i].trim().to_string()),
                values: split_values(&line[i + 1..]),
            }),
            None => lines.push(Line {
                key: None,
                values: split_values(line),
            }),
        }
    }
    Ok(inf)
}

impl Inf {
    /// The lines of section `name`.
    pub fn section(&self, name: &str) -> Option<&[Line]> {
        self.sections
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, l)| l.as_slice())
    }

    /// The values of the first `key` line of section `name`.
    pub fn values(&self, section: &str, key: &str) -> Option<&[String]> {
        self.section(section)?
            .iter()
            .find(|l| l.key.as_deref().is_some_and(|k| k.eq_ignore_ascii_case(key)))
            .map(|l| l.values.as_slice())
    }

    /// The first value of `key` in section `name`, `%strkey%` expanded.
    pub fn value(&self, section: &str, key: &str) -> Option<String> {
        self.values(section, key)?.first().map(|v| self.expand(v))
    }

    /// Expands `%strkey%` tokens from `[Strings]` (DIRIDs like `%12%` stay).
    pub fn expand(&self, s: &str) -> String {
        let mut out = String::new();
        let mut rest = s;
        while let Some(start) = rest.find('%') {
            out.push_str(&rest[..start]);
            let after = &rest[start + 1..];
            match after.find('%') {
                Some(end) => {
                    let key = &after[..end];
                    match self.value_raw("Strings", key) {
                        Some(v) => out.push_str(&v),
                        None => {
                            out.push('%');
                            out.push_str(key);
                            out.push('%');
                        }
                    }
                    rest = &after[end + 1..];
                }
                None => {
                    out.push_str(&rest[start..]);
                    rest = "";
                }
            }
        }
        out.push_str(rest);
        out
    }

    fn value_raw(&self, section: &str, key: &str) -> Option<String> {
        self.values(section, key)?.first().cloned()
    }

    /// The `HKR, <subkey>, <name>, <flags>, <value>` lines of an AddReg section.
    pub fn registry(&self, section: &str) -> Vec<RegEntry> {
        self.section(section)
            .unwrap_or(&[])
            .iter()
            .filter(|l| l.key.is_none() && l.values.first().is_some_and(|v| v.eq_ignore_ascii_case("HKR")))
            .map(|l| {
                let get = |i: usize| l.values.get(i).map(|v| self.expand(v)).unwrap_or_default();
                RegEntry {
                    subkey: get(1),
                    name: get(2),
                    flags: parse_number(&get(3)).unwrap_or(0),
                    value: get(4),
                }
            })
            .collect()
    }
}

/// One `HKR` line of an AddReg section.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegEntry {
    pub subkey: String,
    pub name: String,
    /// `FLG_ADDREG_*`; 0 (empty) is a REG_SZ.
    pub flags: u32,
    pub value: String,
}

/// `FLG_ADDREG_TYPE_MULTI_SZ`.
pub const FLG_ADDREG_TYPE_MULTI_SZ: u32 = 0x0001_0000;
/// `FLG_ADDREG_TYPE_DWORD`.
pub const FLG_ADDREG_TYPE_DWORD: u32 = 0x0001_0001;

/// A decimal or `0x` hexadecimal number, as INF values spell them.
pub fn parse_number(s: &str) -> Option<u32> {
    let s = s.trim();
    match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(hex) => u32::from_str_radix(hex, 16).ok(),
        None => s.parse().ok(),
    }
}

/// The `FilterClass` values Microsoft documents for a lightweight filter outside the Hyper-V
/// extensible switch ("Configuring an INF File for a Modifying Filter Driver"), top of the
/// stack first.
pub const FILTER_CLASSES: &[&str] = &[
    "scheduler",
    "encryption",
    "compression",
    "vpn",
    "loadbalance",
    "failover",
    "diagnostic",
    "custom",
    "provider_address",
];

/// What the INF must say about the driver, from the driver's own constants.
pub struct Expected<'a> {
    pub component_id: &'a str,
    pub friendly_name: &'a str,
    pub unique_name: &'a str,
    pub service_name: &'a str,
    pub media_types: &'a str,
    pub binary: &'a str,
    /// The oldest Windows build the binary loads on ([`min_build_for`] its imports): every
    /// models decoration must require at least it (`NTamd64.10.0...BUILD`).
    pub min_build: u32,
}

impl Expected<'static> {
    /// rxinject's names (`crates/rxinject-abi`).
    pub fn rxinject() -> Expected<'static> {
        Expected {
            component_id: rxinject_abi::COMPONENT_ID,
            friendly_name: rxinject_abi::FILTER_FRIENDLY_NAME,
            unique_name: rxinject_abi::FILTER_UNIQUE_NAME,
            service_name: rxinject_abi::SERVICE_NAME,
            media_types: rxinject_abi::FILTER_MEDIA_TYPES,
            binary: "rxinject.sys",
            min_build: 0,
        }
    }

    /// As [`Expected::rxinject`], for a driver importing `imports`.
    pub fn rxinject_importing<S: AsRef<str>>(imports: &[(S, S)]) -> Expected<'static> {
        Expected {
            min_build: min_build_for(imports),
            ..Expected::rxinject()
        }
    }
}

/// Kernel functions newer than the first Windows 10 (build 10240, NDIS 6.50, what the
/// driver registers), with the build that brought them.
const NEWER_IMPORTS: &[(&str, u32)] = &[
    // "ExAllocatePool2 ... Available starting with Windows 10, version 2004."
    ("ExAllocatePool2", 19041),
    ("ExAllocatePool3", 19041),
];

/// The oldest Windows 10 build that has every function of `imports` (0: any).
pub fn min_build_for<S: AsRef<str>>(imports: &[(S, S)]) -> u32 {
    imports
        .iter()
        .filter_map(|(_, f)| NEWER_IMPORTS.iter().find(|(n, _)| *n == f.as_ref()))
        .map(|(_, b)| *b)
        .max()
        .unwrap_or(0)
}

/// Reports `what` unless `got` is `want` (case-insensitively, as Windows compares).
fn expect(problems: &mut Vec<String>, what: &str, got: Option<String>, want: &str) {
    if !got.as_deref().is_some_and(|g| g.eq_ignore_ascii_case(want)) {
        problems.push(format!("{what}: {got:?}, expected {want:?}"));
    }
}

/// Checks an INF for a modifying, optional, Ethernet lightweight filter against `want`, and
/// that every file it copies is in `files` (the package directory). Returns the problems found.
pub fn check(text: &str, want: &Expected<'_>, files: &std::path::Path) -> Vec<String> {
    let mut problems = Vec::new();
    if let Some((n, _)) = text.lines().enumerate().find(|(_, l)| !l.is_ascii()) {
        problems.push(format!("line {}: not plain ASCII", n + 1));
    }
    let inf = match parse(text) {
        Ok(inf) => inf,
        Err(e) => {
            problems.push(e);
            return problems;
        }
    };
    expect(
        &mut problems,
        "[Version] Signature",
        inf.value("Version", "Signature"),
        "$Windows NT$",
    );
    expect(
        &mut problems,
        "[Version] Class",
        inf.value("Version", "Class"),
        "NetService",
    );
    expect(
        &mut problems,
        "[Version] ClassGUID",
        inf.value("Version", "ClassGUID"),
        "{4D36E974-E325-11CE-BFC1-08002BE10318}",
    );
    let catalog = want.binary.replace(".sys", ".cat");
    expect(
        &mut problems,
        "[Version] CatalogFile",
        inf.value("Version", "CatalogFile"),
        &catalog,
    );

    // [Manufacturer] -> models sections -> install sections.
    let mut installs = Vec::new();
    let manufacturers = inf.section("Manufacturer").unwrap_or(&[]);
    if manufacturers.is_empty() {
        problems.push("no [Manufacturer] entry".into());
    }
    for line in manufacturers {
        let Some((base, decorations)) = line.values.split_first() else {
            continue;
        };
        for d in decorations {
            // NT[arch][.major[.minor[.product[.suite[.build]]]]]
            let build = d
                .split('.')
                .nth(5)
                .and_then(|b| b.parse::<u32>().ok())
                .unwrap_or(0);
            if build < want.min_build {
                problems.push(format!(
                    "[Manufacturer] decoration {d} installs on builds before {}, which lack functions the driver imports",
                    want.min_build
                ));
            }
        }
        let models: Vec<String> = if decorations.is_empty() {
            vec![base.clone()]
        } else {
            decorations.iter().map(|d| format!("{base}.{d}")).collect()
        };
        for m in models {
            let Some(lines) = inf.section(&m) else {
                problems.push(format!("models section [{m}] missing"));
                continue;
            };
            if lines.is_empty() {
                problems.push(format!("models section [{m}] is empty"));
            }
            for l in lines {
                let desc = l.key.as_deref().map(|k| inf.expand(k)).unwrap_or_default();
                if desc != want.friendly_name {
                    problems.push(format!(
                        "[{m}]: description {desc:?}, expected {:?}",
                        want.friendly_name
                    ));
                }
                match l.values.as_slice() {
                    [install, id, ..] => {
                        if !id.eq_ignore_ascii_case(want.component_id) {
                            problems.push(format!(
                                "[{m}]: component id {id:?}, expected {:?}",
                                want.component_id
                            ));
                        }
                        installs.push(install.clone());
                    }
                    v => problems.push(format!(
                        "[{m}]: expected `install-section, component-id`, got {v:?}"
                    )),
                }
            }
        }
    }

    let sources: Vec<String> = inf
        .section("SourceDisksFiles")
        .unwrap_or(&[])
        .iter()
        .filter_map(|l| l.key.clone())
        .collect();
    for f in &sources {
        if !files.join(f).is_file() {
            problems.push(format!("[SourceDisksFiles] {f}: not in {}", files.display()));
        }
    }

    for install in &installs {
        let Some(_) = inf.section(install) else {
            problems.push(format!("install section [{install}] missing"));
            continue;
        };
        let at = |key: &str| inf.value(install, key);
        // NCF_LW_FILTER
        if at("Characteristics").as_deref().and_then(parse_number) != Some(0x40000) {
            problems.push(format!(
                "[{install}] Characteristics: {:?}, expected 0x40000 (NCF_LW_FILTER)",
                at("Characteristics")
            ));
        }
        if at("NetCfgInstanceId").as_deref() != Some(want.unique_name) {
            problems.push(format!(
                "[{install}] NetCfgInstanceId: {:?}, expected {:?}",
                at("NetCfgInstanceId"),
                want.unique_name
            ));
        }

        // The Ndi key.
        let reg: Vec<RegEntry> = inf
            .values(install, "AddReg")
            .unwrap_or(&[])
            .iter()
            .flat_map(|s| inf.registry(s))
            .collect();
        let ndi = |subkey: &str, name: &str| {
            reg.iter()
                .find(|r| r.subkey.eq_ignore_ascii_case(subkey) && r.name.eq_ignore_ascii_case(name))
        };
        for (subkey, name, flags, value) in [
            ("Ndi", "Service", 0, want.service_name),
            ("Ndi", "CoServices", FLG_ADDREG_TYPE_MULTI_SZ, want.service_name),
            ("Ndi", "FilterType", FLG_ADDREG_TYPE_DWORD, "2"),
            ("Ndi", "FilterRunType", FLG_ADDREG_TYPE_DWORD, "2"),
            ("Ndi\\Interfaces", "UpperRange", 0, "noupper"),
            ("Ndi\\Interfaces", "LowerRange", 0, "nolower"),
            ("Ndi\\Interfaces", "FilterMediaTypes", 0, want.media_types),
        ] {
            match ndi(subkey, name) {
                None => problems.push(format!("[{install}]: no HKR,{subkey},{name}")),
                Some(r) if r.flags != flags || !r.value.eq_ignore_ascii_case(value) => {
                    problems.push(format!(
                        "[{install}] HKR,{subkey},{name}: {:#x} {:?}, expected {flags:#x} {value:?}",
                        r.flags, r.value
                    ))
                }
                Some(_) => {}
            }
        }
        match ndi("Ndi", "FilterClass") {
            Some(r) if FILTER_CLASSES.iter().any(|c| c.eq_ignore_ascii_case(&r.value)) => {}
            other => problems.push(format!(
                "[{install}] FilterClass {other:?}: not a documented class"
            )),
        }

        // Files: every copied file is a source file and is in the package.
        let mut dirid = None;
        for copy in inf.values(install, "CopyFiles").unwrap_or(&[]) {
            dirid = inf.value("DestinationDirs", copy);
            if dirid.is_none() {
                problems.push(format!("[DestinationDirs] has no entry for {copy}"));
            }
            for l in inf.section(copy).unwrap_or(&[]) {
                let file = l.values.first().cloned().unwrap_or_default();
                if !sources.iter().any(|s| s.eq_ignore_ascii_case(&file)) {
                    problems.push(format!("[{copy}] {file}: not in [SourceDisksFiles]"));
                }
                if !files.join(&file).is_file() {
                    problems.push(format!("[{copy}] {file}: not in {}", files.display()));
                }
            }
        }

        // The service.
        let services = format!("{install}.Services");
        let add = inf.values(&services, "AddService").unwrap_or(&[]);
        match add {
            [name, _flags, section, ..] => {
                if name != want.service_name {
                    problems.push(format!(
                        "[{services}] AddService {name:?}, expected {:?}",
                        want.service_name
                    ));
                }
                for (key, value) in [
                    ("ServiceType", 1), // SERVICE_KERNEL_DRIVER
                    ("StartType", 1),   // SERVICE_SYSTEM_START
                    ("ErrorControl", 1),
                ] {
                    let got = inf.value(section, key);
                    if got.as_deref().and_then(parse_number) != Some(value) {
                        problems.push(format!("[{section}] {key}: {got:?}, expected {value}"));
                    }
                }
                if inf.value(section, "LoadOrderGroup").as_deref() != Some("NDIS") {
                    problems.push(format!(
                        "[{section}] LoadOrderGroup: {:?}, expected NDIS",
                        inf.value(section, "LoadOrderGroup")
                    ));
                }
                let binary = match &dirid {
                    Some(d) => format!("%{d}%\\{}", want.binary),
                    None => want.binary.to_string(),
                };
                let got = inf.value(section, "ServiceBinary");
                if !got.as_deref().is_some_and(|g| g.eq_ignore_ascii_case(&binary)) {
                    problems.push(format!("[{section}] ServiceBinary: {got:?}, expected {binary:?}"));
                }
            }
            v => problems.push(format!("[{services}] AddService: {v:?}")),
        }
        let remove = format!("{install}.Remove.Services");
        match inf.values(&remove, "DelService") {
            Some([name, ..]) if name == want.service_name => {}
            other => problems.push(format!(
                "[{remove}] DelService: {other:?}, expected {:?}",
                want.service_name
            )),
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_keys_values_comments_and_strings() {
        let inf = parse(
            "; head\n[Version]\nSignature = \"$Windows NT$\" ; comment\nClass=NetService\n\n[A.B]\nHKR, Ndi, Service, , \"svc; not a comment\"\nHKR, Ndi\\Interfaces, UpperRange, 0x00010000, \"noupper\"\nCopyFiles = X, Y\n[Strings]\nDesc = \"The Desc\"\nName = \"%Desc% here\"\n",
        )
        .unwrap();
        assert_eq!(inf.value("version", "signature").as_deref(), Some("$Windows NT$"));
        assert_eq!(inf.value("VERSION", "class").as_deref(), Some("NetService"));
        let reg = inf.registry("A.B");
        assert_eq!(reg.len(), 2);
        assert_eq!(
            (
                reg[0].subkey.as_str(),
                reg[0].name.as_str(),
                reg[0].flags,
                reg[0].value.as_str()
            ),
            ("Ndi", "Service", 0, "svc; not a comment")
        );
        assert_eq!(
            (
                reg[1].subkey.as_str(),
                reg[1].name.as_str(),
                reg[1].flags,
                reg[1].value.as_str()
            ),
            ("Ndi\\Interfaces", "UpperRange", 0x10000, "noupper")
        );
        assert_eq!(inf.values("A.B", "CopyFiles").unwrap(), ["X", "Y"]);
        assert_eq!(inf.expand("%Desc% and %12%\\x.sys"), "The Desc and %12%\\x.sys");
        assert!(parse("key = value\n").is_err());
        assert!(parse("[Broken\n").is_err());
    }
}
