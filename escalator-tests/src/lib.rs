//! The suites every Escalator storage engine passes, kept out of the
//! library (as TiKV's `engine_traits_tests`): [`conformance`] (the trait's
//! contract, with a randomized comparison to a model) and [`crashpoint`]
//! (a workload crashed at every write and sync, then checked for every
//! acknowledged write and for whole batches). The tests of this crate run
//! them for each engine.

pub mod conformance;
pub mod crashpoint;
pub mod etcd_server;
pub mod etcd_subject;
pub mod leveldb_subject;
