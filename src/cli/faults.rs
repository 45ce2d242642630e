//! `chaperone faults`: the reference clinic's plantable faults.

use clinic::Fault;

pub(super) fn faults() {
    let width = Fault::ALL.iter().map(|f| f.name().len()).max().unwrap_or(0);
    for fault in Fault::ALL {
        outln!("{:width$}  {}", fault.name(), fault.summary());
    }
}
