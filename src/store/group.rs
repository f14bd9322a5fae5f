//! Group commit: concurrent callers' write sets share one transaction, so one fsync (SQLite
//! `synchronous = FULL`, PostgreSQL's WAL flush) serves many of them. A caller is answered only
//! after the transaction holding its writes committed: what is acknowledged is durable.

use std::sync::Arc;

use tokio::sync::{Mutex, mpsc, oneshot};

use super::{Applied, Result, Store, Write};

struct Job {
    writes: Vec<Write>,
    reply: oneshot::Sender<Result<Vec<Applied>>>,
}

/// The handle callers send their writes to; the committer task ends when every handle is gone.
#[derive(Clone)]
pub(crate) struct Group {
    jobs: mpsc::Sender<Job>,
}

impl Group {
    /// `committers` transactions may run at once (1 for SQLite, whose writes are serial anyway;
    /// a few for PostgreSQL, where commits of different groups overlap).
    pub(crate) fn spawn(store: Store, max_sets: usize, committers: usize) -> Group {
        let (jobs, rx) = mpsc::channel(max_sets * 4);
        let rx = Arc::new(Mutex::new(rx));
        for _ in 0..committers.max(1) {
            tokio::spawn(run(store.clone(), rx.clone(), max_sets));
        }
        Group { jobs }
    }

    pub(crate) async fn apply(&self, writes: Vec<Write>) -> Result<Vec<Applied>> {
        let (reply, answer) = oneshot::channel();
        let gone = || super::StoreError::Database("the group committer has stopped".into());
        self.jobs
            .send(Job { writes, reply })
            .await
            .map_err(|_| gone())?;
        answer.await.map_err(|_| gone())?
    }
}

async fn run(store: Store, rx: Arc<Mutex<mpsc::Receiver<Job>>>, max_sets: usize) {
    let mut batch: Vec<Job> = Vec::with_capacity(max_sets);
    loop {
        {
            // One committer at a time takes what is waiting; the others commit meanwhile.
            let mut rx = rx.lock().await;
            let Some(first) = rx.recv().await else {
                return;
            };
            batch.push(first);
            // Whatever arrived while the previous commit ran joins this one.
            while batch.len() < max_sets {
                match rx.try_recv() {
                    Ok(job) => batch.push(job),
                    Err(_) => break,
                }
            }
        }
        if batch.len() == 1 {
            let job = batch.pop().expect("one job");
            let _ = job.reply.send(store.apply(&job.writes).await);
            continue;
        }
        let sets: Vec<Vec<Write>> = batch
            .iter_mut()
            .map(|j| std::mem::take(&mut j.writes))
            .collect();
        match store.apply_sets(&sets).await {
            Ok(results) => {
                for (job, r) in batch.drain(..).zip(results) {
                    let _ = job.reply.send(Ok(r));
                }
            }
            Err(_) => {
                // One set failed (a compare-and-set lost, a duplicate key): nothing of the group
                // was committed, so each set is applied alone and gets its own answer.
                for (job, writes) in batch.drain(..).zip(sets) {
                    let _ = job.reply.send(store.apply(&writes).await);
                }
            }
        }
    }
}
