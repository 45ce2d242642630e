//! Ownership: every recording a patient is shown (in the history view, or
//! fetched by id) is one the model attributes to that patient. A recording of
//! another patient is *foreign*; one the harness never saw created is a
//! *phantom* (the 2020 incident created some).

use super::{Clause, Context, Finding, Violation};
use crate::driver::Seen;

pub(super) fn check(ctx: &Context<'_>) -> Vec<Violation> {
    ctx.observation
        .seen
        .iter()
        .filter_map(|(field, seen)| match seen {
            Seen::Unknown(_) => Some(ctx.violation(
                Clause::Ownership,
                field,
                Finding::Phantom { recording: *seen },
            )),
            Seen::Known(id) => {
                let owner = ctx.after.recordings.get(id)?.owner;
                (owner != ctx.patient).then(|| {
                    ctx.violation(
                        Clause::Ownership,
                        field,
                        Finding::Foreign {
                            recording: *seen,
                            owner,
                        },
                    )
                })
            }
        })
        .collect()
}
