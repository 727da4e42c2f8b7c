//! The journal: database writes collected by the scheduler and flushed in
//! batched transactions (action results, file states, `runs` records for
//! `kiln explain`, access times), so a killed build keeps what finished.

use std::collections::HashSet;

use kiln_cache::{ActionResult, Digest, FileState};

use super::ExecError;
use super::record::{Outcome, Record};
use super::scheduler::Scheduler;

/// One pending database write.
pub(super) enum Write {
    Action(Digest, ActionResult),
    File(String, FileState),
    Run(String, Outcome, Record),
    UpToDate(usize),
    Touch(Digest),
}

impl Scheduler<'_> {
    pub(super) fn flush(&mut self) -> Result<(), ExecError> {
        self.last_flush = self.clock.now();
        let mut writes = std::mem::take(&mut self.writes);
        let ws = self.ws_key.clone();
        // Records of earlier builds that were not "up to date" must flip for
        // actions that are up to date now.
        let stale: HashSet<String> = if writes.iter().any(|w| matches!(w, Write::UpToDate(_))) {
            self.cache.runs_not_up_to_date(&ws)?.into_iter().collect()
        } else {
            HashSet::new()
        };
        writes.retain(|w| match w {
            Write::UpToDate(i) => !stale.is_empty() && stale.contains(&self.name(*i)),
            _ => true,
        });
        if writes.is_empty() {
            return Ok(());
        }
        let plan = self.plan.clone();
        let names = |i: usize| plan.actions[i].name().to_string();
        self.cache.transaction(|t| {
            for w in &writes {
                match w {
                    Write::Action(k, r) => t.put_action(k, r)?,
                    Write::File(p, st) => t.put_file_state(p, st)?,
                    Write::Run(name, outcome, rec) => {
                        t.put_run_record(&ws, name, *outcome as u8, &rec.encode())?
                    }
                    Write::UpToDate(i) => t.set_up_to_date(&ws, &names(*i))?,
                    Write::Touch(k) => t.touch_action(k)?,
                }
            }
            Ok(())
        })?;
        Ok(())
    }
}
