//! Every driver that touches a real host root passes the one conformance
//! suite (apply, undo, confinement, timeouts, crash mid-step). A new driver
//! adds its line here.

use vigie_drivers::LocalDriver;
use vigie_tests::conformance;

#[test]
fn local_driver_conforms() {
    conformance::run_all(&mut |root| Box::new(LocalDriver::new(root).expect("local driver")));
}
