//! Logs Insights: StartQuery runs a query (see [`crate::insights`]) in the background
//! over the event store; GetQueryResults, StopQuery and DescribeQueries look at the runs;
//! Put/Describe/DeleteQueryDefinition keep saved queries in the state store;
//! GetLogGroupFields samples a group's recent events for the fields a query can use.
//!
//! Runs live in memory: at most [`MAX_ACTIVE`] scheduled or running at once (more is
//! LimitExceededException), [`workers`] of them scanning at a time on blocking threads,
//! and finished runs kept for [`KEEP_MS`] (at most [`MAX_KEPT`] of them). A server
//! restart forgets them, as it forgets a run it was in the middle of. A run reads events
//! a chunk per stream at a time, merged in timestamp order, and never holds more than the
//! chunks, what `stats`/`sort` keep and the result rows.

use crate::error::{invalid, LogsError};
use crate::event_store::{Event, EventStore, StreamId};
use crate::groups::resolve_group;
use crate::insights::{self, EventRef, Execution, Flow, ResultRow};
use crate::objects::{encode, stream_prefix, Step, StoredStream};
use crate::pagination::{decode_token, encode_token, paginate};
use crate::{retention_floor, Logs};
use model::logs::names::{check_log_group_name_member, log_group_from_identifier};
use model::logs::shapes::{
    DeleteQueryDefinitionRequest, DeleteQueryDefinitionResponse, DescribeQueriesRequest,
    DescribeQueriesResponse, DescribeQueryDefinitionsRequest, DescribeQueryDefinitionsResponse,
    GetLogGroupFieldsRequest, GetLogGroupFieldsResponse, GetQueryResultsRequest,
    GetQueryResultsResponse, LogGroupField, PutQueryDefinitionRequest, PutQueryDefinitionResponse,
    QueryDefinition, QueryInfo, QueryLanguage, QueryParameter, QueryStatistics, QueryStatus,
    ResultField, StartQueryRequest, StartQueryResponse, StopQueryRequest, StopQueryResponse,
};
use serde::{Deserialize, Serialize};
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use store::Txn;

/// Queries scheduled or running at once (AWS's default quota for Logs Insights).
pub const MAX_ACTIVE: usize = 30;
/// How long a finished run's results stay readable.
pub const KEEP_MS: i64 = 7 * crate::DAY_MS;
/// The most finished runs kept.
pub const MAX_KEPT: usize = 1000;
/// AWS stops a query after 60 minutes of runtime (status Timeout).
const TIMEOUT_MS: i64 = 60 * 60 * 1000;
/// Log groups one query may name.
const MAX_GROUPS: usize = 50;
/// Result rows when StartQuery gives no `limit`.
const DEFAULT_LIMIT: usize = 10_000;
/// Rows one GetQueryResults page holds at most.
const MAX_PAGE: usize = 10_000;
/// Events read per stream at a time, split among the streams of a query.
const READ_BUDGET: usize = 64 * 1024;
/// Events GetLogGroupFields samples.
const FIELD_SAMPLE: usize = 10_000;
/// A sequence number above every stored one (the event store keeps them as SQLite
/// integers), so `(t - 1, LAST_SEQ)` is just before every event at `t`.
const LAST_SEQ: u64 = i64::MAX as u64;
/// Where query definitions live in the state store.
const DEFINITION_PREFIX: &str = "logs/querydef/";

/// How many runs scan at once: a core each, at most 4, so queries leave the server room.
pub fn workers() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get().min(4))
}

/// The runs this server knows.
pub(crate) struct Queries {
    runs: Mutex<BTreeMap<String, Arc<Run>>>,
    slots: Arc<tokio::sync::Semaphore>,
}

impl Queries {
    pub(crate) fn new() -> Self {
        Self {
            runs: Mutex::new(BTreeMap::new()),
            slots: Arc::new(tokio::sync::Semaphore::new(workers())),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Arc<Run>>> {
        // A panic while holding the lock leaves a map that is still consistent.
        self.runs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn get(&self, id: &str) -> Result<Arc<Run>, LogsError> {
        self.lock().get(id).cloned().ok_or_else(|| {
            LogsError::ResourceNotFound("The specified query does not exist.".into())
        })
    }
}

/// One run of a query.
struct Run {
    id: String,
    query_string: String,
    groups: Vec<String>,
    create_time: i64,
    cancel: AtomicBool,
    state: Mutex<RunState>,
}

#[derive(Clone)]
struct RunState {
    status: QueryStatus,
    results: Arc<Vec<ResultRow>>,
    matched: u64,
    scanned: u64,
    bytes: u64,
    finished: Option<i64>,
}

impl Run {
    fn state(&self) -> std::sync::MutexGuard<'_, RunState> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn info(&self) -> QueryInfo {
        let s = self.state().clone();
        QueryInfo {
            query_language: Some(QueryLanguage::Cwli),
            query_id: Some(self.id.clone()),
            query_string: Some(self.query_string.clone()),
            status: Some(s.status),
            create_time: Some(self.create_time),
            log_group_name: self.groups.first().cloned(),
            query_duration: s.finished.map(|f| f - self.create_time),
            #[allow(clippy::cast_precision_loss)]
            bytes_scanned: Some(s.bytes as f64),
            user_identity: None,
        }
    }
}

fn is_active(s: QueryStatus) -> bool {
    matches!(s, QueryStatus::Scheduled | QueryStatus::Running)
}

/// The groups a StartQuery names with exactly one of its three members.
fn query_groups(req: &StartQueryRequest) -> Result<Vec<String>, LogsError> {
    let named = [
        req.log_group_name.is_some(),
        req.log_group_names.is_some(),
        req.log_group_identifiers.is_some(),
    ];
    if named.iter().filter(|n| **n).count() != 1 {
        return invalid(
            "Exactly one of logGroupName, logGroupNames or logGroupIdentifiers must be specified.",
        );
    }
    let mut groups = Vec::new();
    if let Some(g) = &req.log_group_name {
        groups.push(resolve_group(Some(g), None)?);
    }
    for g in req.log_group_names.iter().flatten() {
        check_log_group_name_member(g, "logGroupNames").map_err(LogsError::InvalidParameter)?;
        groups.push(g.clone());
    }
    for id in req.log_group_identifiers.iter().flatten() {
        match log_group_from_identifier(id) {
            Some(g) => groups.push(resolve_group(Some(g), None)?),
            None => {
                return invalid(format!(
                    "logGroupIdentifiers member '{id}' is not a log group name or log group ARN."
                ))
            }
        }
    }
    if groups.is_empty() || groups.len() > MAX_GROUPS {
        return invalid(format!(
            "A query must name between 1 and {MAX_GROUPS} log groups."
        ));
    }
    groups.sort();
    groups.dedup();
    Ok(groups)
}

pub(crate) async fn start_query(
    logs: &Logs,
    req: StartQueryRequest,
) -> Result<StartQueryResponse, LogsError> {
    if req.query_language.is_some_and(|l| l != QueryLanguage::Cwli) {
        return invalid("Only the Logs Insights query language (queryLanguage CWLI) is supported by this server; SQL and PPL are not.");
    }
    let groups = query_groups(&req)?;
    if req.start_time < 0 || req.end_time < 0 {
        return invalid("startTime and endTime must not be negative.");
    }
    if req.end_time < req.start_time {
        return invalid("endTime must be greater than or equal to startTime.");
    }
    let limit = match req.limit {
        None => DEFAULT_LIMIT,
        Some(l) if l >= 1 && usize::try_from(l).is_ok_and(|l| l <= insights::MAX_LIMIT) => {
            usize::try_from(l).unwrap_or(DEFAULT_LIMIT)
        }
        Some(l) => return invalid(format!("1 validation error detected: Value '{l}' at 'limit' failed to satisfy constraint: Member must have value between 1 and {}", insights::MAX_LIMIT)),
    };
    let query = insights::parse_query(&req.query_string).map_err(LogsError::MalformedQuery)?;
    // Every group must exist, and each group's streams are fixed now.
    let now = logs.now_ms();
    let mut streams = Vec::new();
    for g in &groups {
        let (group, _) = logs.load_group(g).await?;
        // Each group's retention bounds its own streams' reads.
        let base = stream_prefix(g);
        for (key, s, _) in logs.objects.list::<StoredStream>(&base).await? {
            let name = key.get(base.len()..).unwrap_or("").to_owned();
            let lower = retention_floor(group.retention_in_days, now)
                .unwrap_or(0)
                .max(req.start_time.saturating_mul(1000));
            streams.push((StreamId::new(g, &name, s.incarnation), lower));
        }
    }
    let upper = req.end_time.saturating_mul(1000).saturating_add(999);
    let run = {
        let mut runs = logs.queries.lock();
        prune(&mut runs, now);
        let active = runs
            .values()
            .filter(|r| is_active(r.state().status))
            .count();
        if active >= MAX_ACTIVE {
            return Err(LogsError::LimitExceeded(format!(
                "Account maximum query concurrency limit of [{MAX_ACTIVE}] reached."
            )));
        }
        let run = Arc::new(Run {
            id: uuid::Uuid::new_v4().to_string(),
            query_string: req.query_string.clone(),
            groups,
            create_time: now,
            cancel: AtomicBool::new(false),
            state: Mutex::new(RunState {
                status: QueryStatus::Scheduled,
                results: Arc::new(Vec::new()),
                matched: 0,
                scanned: 0,
                bytes: 0,
                finished: None,
            }),
        });
        runs.insert(run.id.clone(), Arc::clone(&run));
        run
    };
    let id = run.id.clone();
    let finished_clock = Arc::clone(&logs.clock);
    let (events, slots, clock, account) = (
        Arc::clone(&logs.events),
        Arc::clone(&logs.queries.slots),
        Arc::clone(&logs.clock),
        logs.scope.account_id.clone(),
    );
    tokio::spawn(async move {
        let Ok(_permit) = slots.acquire_owned().await else {
            return;
        };
        if run.cancel.load(Ordering::Relaxed) {
            return;
        }
        run.state().status = QueryStatus::Running;
        let job = Arc::clone(&run);
        let scan = tokio::task::spawn_blocking(move || {
            let exec = Execution::new(query, limit);
            execute(
                &job,
                events.as_ref(),
                &streams,
                upper,
                &account,
                exec,
                clock,
            )
        })
        .await;
        let failure = match scan {
            Ok(Ok(())) => return,
            Ok(Err(e)) => e.to_string(),
            Err(e) => e.to_string(),
        };
        tracing::warn!(query = %run.id, error = %failure, "Logs Insights query failed.");
        let mut s = run.state();
        s.status = QueryStatus::Failed;
        s.finished = Some(finished_clock());
    });
    Ok(StartQueryResponse { query_id: Some(id) })
}

/// Drops finished runs older than [`KEEP_MS`], then the oldest beyond [`MAX_KEPT`].
fn prune(runs: &mut BTreeMap<String, Arc<Run>>, now: i64) {
    runs.retain(|_, r| {
        r.state()
            .finished
            .is_none_or(|f| now.saturating_sub(f) < KEEP_MS)
    });
    let mut finished: Vec<(i64, String)> = runs
        .values()
        .filter(|r| !is_active(r.state().status))
        .map(|r| (r.create_time, r.id.clone()))
        .collect();
    if finished.len() > MAX_KEPT {
        finished.sort();
        for (_, id) in finished.iter().take(finished.len() - MAX_KEPT) {
            runs.remove(id);
        }
    }
}

/// One stream being read.
struct Cursor {
    id: StreamId,
    after: (i64, u64),
    buf: VecDeque<Event>,
    done: bool,
}

/// Events scanned between two looks at the outside world (cancel, timeout, progress)
/// when a scan reads streams one after another.
const CHECK_EVERY: u64 = 16 * 1024;

/// A run's scan so far, and the looks it takes at the outside world.
struct Progress<'a> {
    run: &'a Run,
    started: i64,
    clock: crate::Clock,
    scanned: u64,
    bytes: u64,
}

impl Progress<'_> {
    fn count(&mut self, message: &str) {
        self.scanned += 1;
        self.bytes += message.len() as u64;
    }

    /// Whether the run must end now (cancelled, or past AWS's time limit); publishes the
    /// statistics so far otherwise.
    fn interrupted(&self, matched: u64) -> Option<QueryStatus> {
        if self.run.cancel.load(Ordering::Relaxed) {
            return Some(QueryStatus::Cancelled);
        }
        if (self.clock)().saturating_sub(self.started) > TIMEOUT_MS {
            return Some(QueryStatus::Timeout);
        }
        let mut s = self.run.state();
        (s.scanned, s.bytes, s.matched) = (self.scanned, self.bytes, matched);
        None
    }
}

/// The scan: events of every stream in `[lower, upper]` pushed through the query; sets
/// the run's final state. A query whose result does not depend on arrival order reads
/// each stream straight through, without copying events; any other gets them merged in
/// timestamp order.
fn execute(
    run: &Run,
    events: &dyn EventStore,
    streams: &[(StreamId, i64)],
    upper: i64,
    account: &str,
    mut exec: Execution,
    clock: crate::Clock,
) -> Result<(), store::StoreError> {
    let logs_of: HashMap<&str, String> = streams
        .iter()
        .map(|(id, _)| (id.group.as_str(), format!("{account}:{}", id.group)))
        .collect();
    let mut progress = Progress {
        run,
        started: clock(),
        clock: Arc::clone(&clock),
        scanned: 0,
        bytes: 0,
    };
    let before = Some((upper.saturating_add(1), 0));
    let mut outcome = QueryStatus::Complete;
    if exec.order_free() {
        for (id, lower) in streams {
            let log = logs_of.get(id.group.as_str()).map_or("", String::as_str);
            let mut stop = false;
            events.scan(
                id,
                Some((lower.saturating_sub(1), LAST_SEQ)),
                before,
                &mut |e| {
                    progress.count(e.message);
                    let flow = exec.push(EventRef {
                        timestamp: e.timestamp,
                        ingestion_time: e.ingestion_time,
                        message: e.message,
                        log_stream: &id.stream,
                        log,
                        seq: e.seq,
                    });
                    if flow == Flow::Stop {
                        stop = true;
                    } else if progress.scanned.is_multiple_of(CHECK_EVERY) {
                        if let Some(o) = progress.interrupted(exec.matched()) {
                            (outcome, stop) = (o, true);
                        }
                    }
                    !stop
                },
            )?;
            if stop {
                break;
            }
        }
    } else {
        outcome = merge(&mut progress, events, streams, before, &logs_of, &mut exec)?;
    }
    let matched = exec.matched();
    let results = if outcome == QueryStatus::Complete {
        exec.finish()
    } else {
        Vec::new()
    };
    let mut s = run.state();
    if s.status == QueryStatus::Cancelled {
        outcome = QueryStatus::Cancelled;
    }
    s.status = outcome;
    s.results = Arc::new(results);
    (s.scanned, s.bytes, s.matched) = (progress.scanned, progress.bytes, matched);
    s.finished = Some(clock());
    Ok(())
}

/// Pushes the events of every stream through `exec` in timestamp order, reading a chunk
/// per stream at a time; how the scan ended.
fn merge(
    progress: &mut Progress<'_>,
    events: &dyn EventStore,
    streams: &[(StreamId, i64)],
    before: Option<(i64, u64)>,
    logs_of: &HashMap<&str, String>,
    exec: &mut Execution,
) -> Result<QueryStatus, store::StoreError> {
    let chunk = (READ_BUDGET / streams.len().max(1)).clamp(16, 1024);
    let mut cursors: Vec<Cursor> = streams
        .iter()
        .map(|(id, lower)| Cursor {
            id: id.clone(),
            after: (lower.saturating_sub(1), LAST_SEQ),
            buf: VecDeque::new(),
            done: false,
        })
        .collect();
    let fill = |c: &mut Cursor| -> Result<(), store::StoreError> {
        if c.buf.is_empty() && !c.done {
            let got = events.read(&c.id, Some(c.after), before, false, chunk)?;
            c.done = got.len() < chunk;
            if let Some(last) = got.last() {
                c.after = (last.timestamp, last.seq);
            }
            c.buf.extend(got);
        }
        Ok(())
    };
    let mut heap = BinaryHeap::new();
    for (i, c) in cursors.iter_mut().enumerate() {
        fill(c)?;
        if let Some(e) = c.buf.front() {
            heap.push(Reverse((e.timestamp, i, e.seq)));
        }
    }
    while let Some(Reverse((_, i, _))) = heap.pop() {
        let Some(c) = cursors.get_mut(i) else { break };
        let Some(e) = c.buf.pop_front() else { continue };
        progress.count(&e.message);
        let flow = exec.push(EventRef {
            timestamp: e.timestamp,
            ingestion_time: e.ingestion_time,
            message: &e.message,
            log_stream: &c.id.stream,
            log: logs_of.get(c.id.group.as_str()).map_or("", String::as_str),
            seq: e.seq,
        });
        if flow == Flow::Stop {
            break;
        }
        if c.buf.is_empty() {
            // Between chunks: look at the outside world.
            if let Some(outcome) = progress.interrupted(exec.matched()) {
                return Ok(outcome);
            }
        }
        fill(c)?;
        if let Some(next) = c.buf.front() {
            heap.push(Reverse((next.timestamp, i, next.seq)));
        }
    }
    Ok(QueryStatus::Complete)
}

pub(crate) async fn get_query_results(
    logs: &Logs,
    req: GetQueryResultsRequest,
) -> Result<GetQueryResultsResponse, LogsError> {
    let run = logs.queries.get(&req.query_id)?;
    let size = match req.max_items {
        None => MAX_PAGE,
        Some(n) if (0..=10_000).contains(&n) => usize::try_from(n).unwrap_or(MAX_PAGE).max(1),
        Some(n) => return invalid(format!("1 validation error detected: Value '{n}' at 'maxItems' failed to satisfy constraint: Member must have value less than or equal to {MAX_PAGE}")),
    };
    let s = run.state().clone();
    let from = match req.next_token.as_deref().filter(|t| !t.is_empty()) {
        None => 0,
        Some(t) => decode_token(&format!("results:{}", run.id), t)?
            .parse::<usize>()
            .map_err(|_| {
                LogsError::InvalidParameter("The specified nextToken is invalid.".into())
            })?,
    };
    let rows: Vec<Vec<ResultField>> = s
        .results
        .iter()
        .skip(from)
        .take(size)
        .map(|row| {
            row.iter()
                .map(|(f, v)| ResultField {
                    field: Some(f.clone()),
                    value: Some(v.clone()),
                })
                .collect()
        })
        .collect();
    let end = from + rows.len();
    #[allow(clippy::cast_precision_loss)]
    let statistics = QueryStatistics {
        records_matched: Some(s.matched as f64),
        records_scanned: Some(s.scanned as f64),
        bytes_scanned: Some(s.bytes as f64),
        log_groups_scanned: Some(run.groups.len() as f64),
        ..QueryStatistics::default()
    };
    Ok(GetQueryResultsResponse {
        query_language: Some(QueryLanguage::Cwli),
        results: Some(rows),
        statistics: Some(statistics),
        status: Some(s.status),
        encryption_key: None,
        next_token: (end < s.results.len())
            .then(|| encode_token(&format!("results:{}", run.id), &end.to_string())),
    })
}

pub(crate) async fn stop_query(
    logs: &Logs,
    req: StopQueryRequest,
) -> Result<StopQueryResponse, LogsError> {
    let run = logs.queries.get(&req.query_id)?;
    let mut s = run.state();
    if !is_active(s.status) {
        return Ok(StopQueryResponse {
            success: Some(false),
        });
    }
    run.cancel.store(true, Ordering::Relaxed);
    // A scheduled run never starts; a running one stops at its next chunk.
    s.status = QueryStatus::Cancelled;
    s.finished = Some(logs.now_ms());
    Ok(StopQueryResponse {
        success: Some(true),
    })
}

pub(crate) async fn describe_queries(
    logs: &Logs,
    req: DescribeQueriesRequest,
) -> Result<DescribeQueriesResponse, LogsError> {
    let size = crate::pagination::page_size(req.max_results, 1000)?;
    if req.query_language.is_some_and(|l| l != QueryLanguage::Cwli) {
        // This server runs only CWLI queries: none match another language.
        return Ok(DescribeQueriesResponse {
            queries: Some(Vec::new()),
            next_token: None,
        });
    }
    let runs: Vec<Arc<Run>> = logs.queries.lock().values().cloned().collect();
    let mut items: Vec<(String, QueryInfo)> = runs
        .iter()
        .filter(|r| {
            req.log_group_name
                .as_ref()
                .is_none_or(|g| r.groups.contains(g))
        })
        .map(|r| (format!("{:020}{}", r.create_time.max(0), r.id), r.info()))
        .filter(|(_, i)| req.status.is_none_or(|s| i.status == Some(s)))
        .collect();
    // Newest first.
    items.sort_by(|a, b| b.0.cmp(&a.0));
    let page = paginate("queries", items, req.next_token.as_deref(), size, true)?;
    Ok(DescribeQueriesResponse {
        queries: Some(page.items),
        next_token: page.next_token,
    })
}

/// A saved query definition.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct StoredDefinition {
    name: String,
    query_string: String,
    #[serde(default)]
    log_group_names: Vec<String>,
    last_modified: i64,
    query_language: QueryLanguage,
    #[serde(default)]
    parameters: Option<Vec<QueryParameter>>,
    #[serde(default)]
    client_token: Option<String>,
}

pub(crate) async fn put_query_definition(
    logs: &Logs,
    req: PutQueryDefinitionRequest,
) -> Result<PutQueryDefinitionResponse, LogsError> {
    let name_len = req.name.chars().count();
    if !(1..=255).contains(&name_len) {
        return invalid("1 validation error detected: Value at 'name' failed to satisfy constraint: Member must have length between 1 and 255");
    }
    let query_len = req.query_string.chars().count();
    if !(1..=insights::MAX_QUERY_CHARS).contains(&query_len) {
        return invalid("1 validation error detected: Value at 'queryString' failed to satisfy constraint: Member must have length between 1 and 10000");
    }
    if req.parameters.as_ref().is_some_and(|p| p.len() > 20) {
        return invalid("1 validation error detected: Value at 'parameters' failed to satisfy constraint: Member must have length less than or equal to 20");
    }
    for g in req.log_group_names.iter().flatten() {
        check_log_group_name_member(g, "logGroupNames").map_err(LogsError::InvalidParameter)?;
    }
    let language = req.query_language.unwrap_or(QueryLanguage::Cwli);
    let defs = logs
        .objects
        .list::<StoredDefinition>(DEFINITION_PREFIX)
        .await?;
    if let (None, Some(token)) = (&req.query_definition_id, &req.client_token) {
        // The same request again (a retry after a lost answer) gets the same definition.
        if let Some((key, _, _)) = defs
            .iter()
            .find(|(_, d, _)| d.client_token.as_deref() == Some(token.as_str()))
        {
            return Ok(PutQueryDefinitionResponse {
                query_definition_id: key.get(DEFINITION_PREFIX.len()..).map(str::to_owned),
            });
        }
    }
    let id = match &req.query_definition_id {
        Some(id) => {
            if !defs
                .iter()
                .any(|(k, _, _)| k.get(DEFINITION_PREFIX.len()..) == Some(id))
            {
                return Err(LogsError::ResourceNotFound(
                    "The specified query definition does not exist.".into(),
                ));
            }
            id.clone()
        }
        None => uuid::Uuid::new_v4().to_string(),
    };
    let def = StoredDefinition {
        name: req.name,
        query_string: req.query_string,
        log_group_names: req.log_group_names.unwrap_or_default(),
        last_modified: logs.now_ms(),
        query_language: language,
        parameters: req.parameters,
        client_token: req.client_token,
    };
    let key = format!("{DEFINITION_PREFIX}{id}");
    logs.objects
        .retry(&key, || async {
            Ok(Step::Commit(
                Txn::new().put(key.as_str(), encode(&def)?),
                (),
            ))
        })
        .await?;
    Ok(PutQueryDefinitionResponse {
        query_definition_id: Some(id),
    })
}

pub(crate) async fn describe_query_definitions(
    logs: &Logs,
    req: DescribeQueryDefinitionsRequest,
) -> Result<DescribeQueryDefinitionsResponse, LogsError> {
    let size = crate::pagination::page_size(req.max_results, 1000)?;
    let prefix = req.query_definition_name_prefix.unwrap_or_default();
    let mut items: Vec<(String, QueryDefinition)> = logs
        .objects
        .list::<StoredDefinition>(DEFINITION_PREFIX)
        .await?
        .into_iter()
        .filter(|(_, d, _)| d.name.starts_with(&prefix))
        .filter(|(_, d, _)| req.query_language.is_none_or(|l| l == d.query_language))
        .map(|(key, d, _)| {
            let id = key.get(DEFINITION_PREFIX.len()..).unwrap_or("").to_owned();
            (
                format!("{}\u{0}{id}", d.name),
                QueryDefinition {
                    query_language: Some(d.query_language),
                    query_definition_id: Some(id),
                    name: Some(d.name),
                    query_string: Some(d.query_string),
                    last_modified: Some(d.last_modified),
                    log_group_names: Some(d.log_group_names),
                    parameters: d.parameters,
                },
            )
        })
        .collect();
    items.sort_by(|a, b| a.0.cmp(&b.0));
    let page = paginate("querydefs", items, req.next_token.as_deref(), size, false)?;
    Ok(DescribeQueryDefinitionsResponse {
        query_definitions: Some(page.items),
        next_token: page.next_token,
    })
}

pub(crate) async fn delete_query_definition(
    logs: &Logs,
    req: DeleteQueryDefinitionRequest,
) -> Result<DeleteQueryDefinitionResponse, LogsError> {
    let key = format!("{DEFINITION_PREFIX}{}", req.query_definition_id);
    logs.objects
        .retry(&key, || async {
            let Some((_, rev)) = logs.objects.get::<StoredDefinition>(&key).await? else {
                return Err(LogsError::ResourceNotFound(
                    "The specified query definition does not exist.".into(),
                ));
            };
            Ok(Step::Commit(
                Txn::new().when(key.as_str(), rev).delete(key.as_str()),
                (),
            ))
        })
        .await?;
    Ok(DeleteQueryDefinitionResponse {
        success: Some(true),
    })
}

pub(crate) async fn get_log_group_fields(
    logs: &Logs,
    req: GetLogGroupFieldsRequest,
) -> Result<GetLogGroupFieldsResponse, LogsError> {
    let group = resolve_group(
        req.log_group_name.as_deref(),
        req.log_group_identifier.as_deref(),
    )?;
    let (g, _) = logs.load_group(&group).await?;
    let now = logs.now_ms();
    // AWS: 8 minutes either side of `time` (seconds), or the last 15 minutes.
    let (lower, upper) = match req.time {
        Some(t) if t < 0 => return invalid("time must not be negative."),
        Some(t) => {
            let ms = t.saturating_mul(1000);
            (ms - 8 * 60_000, ms + 8 * 60_000)
        }
        None => (now - 15 * 60_000, now),
    };
    let lower = lower.max(retention_floor(g.retention_in_days, now).unwrap_or(0));
    let base = stream_prefix(&group);
    let streams: Vec<StreamId> = logs
        .objects
        .list::<StoredStream>(&base)
        .await?
        .into_iter()
        .map(|(k, s, _)| StreamId::new(&group, k.get(base.len()..).unwrap_or(""), s.incarnation))
        .collect();
    let per_stream = (FIELD_SAMPLE / streams.len().max(1)).max(1);
    let (total, counts) = logs
        .events(move |events| {
            let mut total = 0usize;
            let mut counts: BTreeMap<String, usize> = BTreeMap::new();
            for s in &streams {
                if total >= FIELD_SAMPLE {
                    break;
                }
                let got = events.read(
                    s,
                    Some((lower.saturating_sub(1), LAST_SEQ)),
                    Some((upper.saturating_add(1), 0)),
                    true,
                    per_stream,
                )?;
                for e in got {
                    total += 1;
                    for f in insights::message_fields(&e.message) {
                        *counts.entry(f).or_default() += 1;
                    }
                }
            }
            Ok((total, counts))
        })
        .await?;
    let mut fields = Vec::new();
    if total > 0 {
        for name in [
            "@timestamp",
            "@message",
            "@logStream",
            "@log",
            "@ingestionTime",
        ] {
            fields.push(LogGroupField {
                name: Some(name.to_owned()),
                percent: Some(100),
            });
        }
        for (name, n) in counts {
            fields.push(LogGroupField {
                name: Some(name),
                percent: (n * 100)
                    .checked_div(total)
                    .and_then(|p| i32::try_from(p).ok()),
            });
        }
    }
    Ok(GetLogGroupFieldsResponse {
        log_group_fields: Some(fields),
    })
}
