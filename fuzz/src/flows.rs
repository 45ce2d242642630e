//! The `flows` target's body: decode, execute against a [`Service`] through
//! the same driver, model and oracles as `chaperone run`, and judge.

use std::sync::Arc;

use chaperone::binding::Binding;
use chaperone::driver::{BindingDriver, Store, Transport};
use chaperone::model::{Flow, Limits, Step};
use chaperone::oracle::Canaries;
use chaperone::runner::{
    CaseEnd, CaseRun, alone_for_comparison, alone_steps, differs, execute, interfered, suspects,
};

use crate::service::Service;

/// How one `flows` input ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FlowOutcome {
    /// No violation (or, when not strict, a divergence or target failure:
    /// the input ends without a finding).
    Passed,
    /// The property failed: the message names the step, clause and aliases.
    Failed(String),
}

/// What a run other than a privacy violation means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// The service is meant to be correct: a divergence from the model (a
    /// valid step refused, an answer of the wrong shape) or a target failure
    /// (a 5xx, a body over the cap) is a failure too, as on the clean clinic.
    Correct,
    /// Faults are planted: only a privacy violation is a failure; a
    /// divergence a fault causes ends the input quietly.
    Faulty,
}

/// One service under fuzzing, with its binding: runs flows on it.
pub struct Flows<S> {
    service: S,
    binding: Arc<Binding>,
    limits: Limits,
    canaries: Canaries,
    expect: Expect,
}

impl<S: Service> Flows<S> {
    /// Fuzz `service` through `binding`; the model generates only what the
    /// binding can express.
    pub fn new(service: S, binding: Binding, expect: Expect) -> Flows<S> {
        let limits = Limits {
            caps: binding.caps,
            ..Limits::default()
        };
        Flows {
            service,
            binding: Arc::new(binding),
            limits,
            canaries: Canaries::new(limits.patients_max),
            expect,
        }
    }

    /// The limits flows decode under (for the mutator, so that it sees the
    /// steps the target runs).
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Run `steps` on the service, reset first.
    fn execute(&mut self, steps: &[Step]) -> CaseRun {
        self.service.reset();
        let mut driver = BindingDriver::in_process(self.binding.clone(), self.service.router());
        if let Some((router, spec)) = self.service.store() {
            driver = driver.with_store(Store::new(Transport::InProcess(router), spec, false));
        }
        crate::runtime().block_on(execute(
            &mut driver,
            self.limits,
            &self.canaries,
            steps,
            None,
        ))
    }

    /// Decode `flow`, run it, and judge it as `chaperone run` judges a case:
    /// the oracles after every step; a refused valid step that succeeds when
    /// its patient acts alone (noninterference); a patient's own finished
    /// recording missing, compared with that patient's steps alone.
    pub fn run(&mut self, flow: &Flow) -> FlowOutcome {
        let steps = flow.steps(self.limits);
        if steps.is_empty() {
            return FlowOutcome::Passed;
        }
        let run = self.execute(&steps);
        let binding = self.binding.clone();
        if let CaseEnd::Diverged { step, status, .. } = run.end
            && let Some(alone) = alone_steps(self.limits, &steps, step, &binding.shared)
            && self.execute(&alone).end == CaseEnd::Passed
        {
            let violation = interfered(&steps, step, status, &alone);
            return FlowOutcome::Failed(format!(
                "privacy violation at step {step} `{}`: [{}] {violation};",
                steps[step - 1],
                violation.clause
            ));
        }
        if run.end == CaseEnd::Passed {
            for (patient, upto) in suspects(&binding, &steps, &run) {
                let prefix = &steps[..upto];
                let Some((indices, alone)) =
                    alone_for_comparison(self.limits, prefix, &run.trace, patient)
                else {
                    continue;
                };
                let solo = self.execute(&alone);
                if let Some(violation) =
                    differs(&binding, prefix, &run.trace, &indices, &solo, patient)
                {
                    return FlowOutcome::Failed(format!(
                        "privacy violation at step {} `{}`: [{}] {violation};",
                        violation.step,
                        steps[violation.step - 1],
                        violation.clause
                    ));
                }
            }
        }
        let strict = self.expect == Expect::Correct;
        match run.end {
            CaseEnd::Passed => FlowOutcome::Passed,
            CaseEnd::Violated { violations } => {
                let mut message = format!(
                    "privacy violation at step {} `{}`:",
                    run.steps_run,
                    steps[run.steps_run - 1]
                );
                for violation in &violations {
                    message.push_str(&format!(" [{}] {violation};", violation.clause));
                }
                FlowOutcome::Failed(message)
            }
            CaseEnd::Diverged { step, reason, .. } if strict => FlowOutcome::Failed(format!(
                "the service diverged from the model at step {step}: {reason}"
            )),
            CaseEnd::TargetFailed { step, error } if strict => {
                FlowOutcome::Failed(format!("the service failed at step {step}: {error}"))
            }
            CaseEnd::Diverged { .. } | CaseEnd::TargetFailed { .. } => FlowOutcome::Passed,
        }
    }
}
