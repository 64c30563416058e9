//! The tower's data dir is private: it holds the tower's secret key, the
//! admin's key, LevelDB files, plug journals and stashes (file contents in
//! clear), and the internal sockets. Made 0700 at every start — an
//! existing, wider one is narrowed and reported (`data_dir_tightened`) —
//! with `run/` (the default internal sockets) 0700 inside it.

use vigie_escalator::ensure_private_dir;

use crate::endpoints::run_dir;
use crate::error::LauncherError;
use crate::setup::Setup;

/// Creates (or narrows) the data dir and its `run/` dir, both 0700.
pub fn prepare_data_dir(setup: &Setup) -> Result<(), LauncherError> {
    let data = &setup.data_dir;
    ensure_private_dir(data).map_err(|e| LauncherError::io(data, e))?;
    let run = run_dir(data);
    ensure_private_dir(&run).map_err(|e| LauncherError::io(&run, e))?;
    Ok(())
}
