//! Resource quantities (`500m`, `2`, `512Mi`, `1G`): read into their smallest unit to compare
//! and add, and written back as the API server prints them.

/// A quantity in base units (cores for CPU, bytes for memory and storage, objects for counts),
/// `None` when it is not a quantity.
pub(crate) fn amount(text: &str) -> Option<f64> {
    let suffixes: [(&str, f64); 11] = [
        ("m", 0.001),
        ("Ki", 1024.0),
        ("Mi", 1024f64.powi(2)),
        ("Gi", 1024f64.powi(3)),
        ("Ti", 1024f64.powi(4)),
        ("k", 1e3),
        ("M", 1e6),
        ("G", 1e9),
        ("T", 1e12),
        ("E", 1e18),
        ("P", 1e15),
    ];
    for (suffix, factor) in suffixes {
        if let Some(n) = text.strip_suffix(suffix) {
            return n.parse::<f64>().ok().map(|n| n * factor);
        }
    }
    text.parse().ok()
}

/// Millicores in a CPU quantity (`500m`, `2`, `0.5`); 0 when it is none.
pub(crate) fn cpu_millis(text: &str) -> i64 {
    amount(text).map_or(0, |cores| (cores * 1000.0).round() as i64)
}

/// Bytes in a memory quantity (`512Mi`, `1G`, `1000`); 0 when it is none.
pub(crate) fn bytes(text: &str) -> i64 {
    amount(text).map_or(0, |b| b.round() as i64)
}

/// Millicores as the API server prints them: whole cores bare, else in `m`.
pub(crate) fn cpu_text(millis: i64) -> String {
    if millis % 1000 == 0 {
        (millis / 1000).to_string()
    } else {
        format!("{millis}m")
    }
}

/// Bytes in the largest binary unit that divides them.
pub(crate) fn memory_text(bytes: i64) -> String {
    for (suffix, factor) in [("Gi", 1i64 << 30), ("Mi", 1 << 20), ("Ki", 1 << 10)] {
        if bytes >= factor && bytes % factor == 0 {
            return format!("{}{suffix}", bytes / factor);
        }
    }
    bytes.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities_read_and_print_as_the_server_does() {
        assert_eq!(cpu_millis("500m"), 500);
        assert_eq!(cpu_millis("1.5"), 1500);
        assert_eq!(cpu_millis("2"), 2000);
        assert_eq!(cpu_millis(""), 0);
        assert_eq!(bytes("512Mi"), 512 << 20);
        assert_eq!(bytes("1G"), 1_000_000_000);
        assert_eq!(cpu_text(1500), "1500m");
        assert_eq!(cpu_text(2000), "2");
        assert_eq!(memory_text(512 << 20), "512Mi");
        assert_eq!(memory_text(3 << 30), "3Gi");
        assert_eq!(memory_text(1000), "1000");
    }
}
