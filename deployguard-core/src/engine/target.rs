//! Choosing the revision to roll back to.

use crate::error::{Error, ErrorKind, Result};
use crate::model::{Fingerprint, Revision};

/// The revision to roll back to from the one running `failing`.
///
/// The newest revision older than the failing one that was verified healthy; else the newest
/// older one that exists. Revisions running the same thing as the failing one are skipped. Never
/// `current - 1`: numbers have gaps after rollbacks. No candidate is [`ErrorKind::NotFound`].
///
/// ```
/// use deployguard_core::{Fingerprint, Revision, RevisionId};
/// use deployguard_core::engine::rollback_target;
///
/// let rev = |id, fp: &str, verified| {
///     Revision::new(RevisionId(id), Fingerprint::new(fp), vec![]).with_verified(verified)
/// };
/// // Revision 2 was rolled back to earlier and is now 4; 5 is failing.
/// let history = [rev(1, "a", true), rev(3, "c", false), rev(4, "b", true), rev(5, "d", false)];
/// let target = rollback_target(&history, &Fingerprint::new("d"))?;
/// assert_eq!(target.id, RevisionId(4));
/// # Ok::<(), deployguard_core::Error>(())
/// ```
pub fn rollback_target<'h>(history: &'h [Revision], failing: &Fingerprint) -> Result<&'h Revision> {
    let failing_id = history
        .iter()
        .filter(|r| &r.fingerprint == failing)
        .map(|r| r.id)
        .max();
    let older = history
        .iter()
        .filter(|r| &r.fingerprint != failing)
        .filter(|r| failing_id.is_none_or(|id| r.id < id));
    let newest_verified = older.clone().filter(|r| r.verified).max_by_key(|r| r.id);
    newest_verified.or_else(|| older.max_by_key(|r| r.id)).ok_or_else(|| {
        Error::new(
            ErrorKind::NotFound,
            format!(
                "no revision older than the failing one ({failing}) to roll back to; history has {}",
                history.len()
            ),
        )
        .with_operation("rollback_target")
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::RevisionId;

    fn rev(id: u64, fp: &str, verified: bool) -> Revision {
        Revision::new(RevisionId(id), Fingerprint::new(fp), vec![]).with_verified(verified)
    }

    #[test]
    fn prefers_verified_then_next_lower_never_arithmetic() {
        let failing = Fingerprint::new("bad");
        let cases: [(&[Revision], Option<u64>); 5] = [
            (
                &[rev(1, "a", true), rev(2, "b", false), rev(3, "bad", false)],
                Some(1),
            ),
            (
                &[rev(1, "a", false), rev(2, "b", false), rev(3, "bad", false)],
                Some(2),
            ),
            (
                &[rev(1, "a", false), rev(4, "b", false), rev(7, "bad", false)],
                Some(4),
            ),
            (
                &[rev(1, "a", true), rev(9, "b", true), rev(7, "bad", false)],
                Some(1),
            ),
            (&[rev(3, "bad", false)], None),
        ];
        for (history, expected) in cases {
            let got = rollback_target(history, &failing).ok().map(|r| r.id.0);
            assert_eq!(got, expected, "{history:?}");
        }
        let err = rollback_target(&[rev(3, "bad", false)], &failing).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotFound);
    }
}
