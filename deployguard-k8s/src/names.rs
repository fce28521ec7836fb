//! Object names as the API server validates them, checked before any request: a name is pasted
//! into a URL path, so `web?x=1` or `../secrets` must never reach one.

use deployguard_core::{Error, Result};

/// A DNS-1123 subdomain (Deployment, Service, ConfigMap names): at most 253 characters of
/// lowercase letters, digits, `-` and `.`, starting and ending with a letter or digit.
pub fn check_subdomain(field: &str, name: &str) -> Result<()> {
    let valid = !name.is_empty()
        && name.len() <= 253
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
        && alphanumeric_ends(name);
    if valid {
        Ok(())
    } else {
        Err(Error::invalid_input(
            field,
            format!(
                "{name:?} is not a valid name: a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character"
            ),
        ))
    }
}

/// A DNS-1123 label (Namespace names): as a subdomain, without dots, at most 63 characters.
pub fn check_label(field: &str, name: &str) -> Result<()> {
    let valid = !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && alphanumeric_ends(name);
    if valid {
        Ok(())
    } else {
        Err(Error::invalid_input(
            field,
            format!(
                "{name:?} is not a valid name: a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', start and end with an alphanumeric character, and be at most 63 characters"
            ),
        ))
    }
}

fn alphanumeric_ends(name: &str) -> bool {
    name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked_as_the_api_server_checks_them() {
        for good in ["web", "app-deployment", "a", "v1.2-web", "0ab"] {
            assert!(check_subdomain("name", good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "Web",
            "web?x=1",
            "../secrets",
            "a/b",
            "-web",
            "web-",
            "a b",
            "web%2F",
        ] {
            assert!(check_subdomain("name", bad).is_err(), "{bad}");
        }
        assert!(check_label("namespace", "a.b").is_err());
        assert!(check_label("namespace", &"x".repeat(64)).is_err());
        assert!(check_subdomain("name", &"x".repeat(253)).is_ok());
        assert!(check_subdomain("name", &"x".repeat(254)).is_err());
    }
}
