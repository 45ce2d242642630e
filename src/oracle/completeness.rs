//! Completeness (not privacy; a warning): a patient's own finished recordings
//! do appear — on the history page where the model expects them, and on
//! playback by their owner.

use super::{Clause, Context, Finding, Violation};
use crate::driver::Seen;
use crate::model::{RecordingId, Step};

pub(super) fn check(ctx: &Context<'_>) -> Vec<Violation> {
    let finished = |id: &RecordingId| {
        ctx.after
            .recordings
            .get(id)
            .is_some_and(|r| r.finished && !r.erased)
    };
    match *ctx.step {
        Step::View {
            patient,
            view,
            of,
            subject: None,
            page,
            per_page,
        } if ctx.observation.is_success() && ctx.after.is_active(patient) => {
            let Some(spec) = ctx.after.limits.caps.view(view) else {
                return Vec::new();
            };
            let Some(expected) = ctx.after.expected_page(patient, &spec, of, page, per_page) else {
                return Vec::new();
            };
            expected
                .into_iter()
                .filter(|id| finished(id))
                .filter(|id| {
                    !ctx.observation
                        .seen
                        .iter()
                        .any(|(_, s)| *s == Seen::Known(*id))
                })
                .map(|id| {
                    ctx.violation(
                        Clause::Completeness,
                        "items",
                        Finding::Missing {
                            recording: Seen::Known(id),
                        },
                    )
                })
                .collect()
        }
        Step::Play { recording, .. } if !ctx.observation.is_success() && finished(&recording) => {
            vec![ctx.violation(
                Clause::Completeness,
                "status",
                Finding::Missing {
                    recording: Seen::Known(recording),
                },
            )]
        }
        _ => Vec::new(),
    }
}
