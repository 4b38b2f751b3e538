//! Task definitions: families of immutable revisions. Register allocates the next
//! revision with compare-and-swap on the family record, so concurrent registrations of
//! one family get distinct revisions and none is lost.

use crate::error::EcsError;
use crate::objects::{
    encode, family_key, taskdef_key, taskdef_prefix, FamilyRecord, Step, StoredTaskDefinition,
};
use crate::pagination::{page_size, paginate};
use crate::{now, Caller, Ecs};
use model::ecs::arn::EcsResource;
use model::ecs::shapes::{
    DeleteTaskDefinitionsRequest, DeleteTaskDefinitionsResponse, DeregisterTaskDefinitionRequest,
    DeregisterTaskDefinitionResponse, DescribeTaskDefinitionRequest,
    DescribeTaskDefinitionResponse, Failure, ListTaskDefinitionFamiliesRequest,
    ListTaskDefinitionFamiliesResponse, ListTaskDefinitionsRequest, ListTaskDefinitionsResponse,
    RegisterTaskDefinitionRequest, RegisterTaskDefinitionResponse, SortOrder, TaskDefinition,
    TaskDefinitionFamilyStatus, TaskDefinitionField, TaskDefinitionStatus,
};
use model::ecs::task_definition::{compute_task_definition, Registration};
use store::Txn;

/// The largest request ECS accepts for one definition (64 KiB of JSON).
const MAX_DEFINITION_BYTES: usize = 65_536;

/// A reference to a task definition as callers write it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TaskDefRef {
    pub family: String,
    pub revision: Option<i32>,
}

impl Ecs {
    /// Parses `family`, `family:revision` or a task definition ARN.
    pub(crate) fn parse_task_def_ref(&self, s: &str) -> Result<TaskDefRef, EcsError> {
        let bad = || {
            EcsError::Client(format!("Invalid task definition reference '{s}': use family, family:revision or a task definition ARN."))
        };
        if s.starts_with("arn:") {
            return match self.scope.parse(s) {
                Ok(EcsResource::TaskDefinition { family, revision }) => Ok(TaskDefRef {
                    family,
                    revision: Some(revision),
                }),
                _ => Err(bad()),
            };
        }
        match s.split_once(':') {
            Some((f, r)) => {
                let revision: i32 = r.parse().map_err(|_| bad())?;
                if f.is_empty() || revision < 1 {
                    return Err(bad());
                }
                Ok(TaskDefRef {
                    family: f.to_owned(),
                    revision: Some(revision),
                })
            }
            None if !s.is_empty() => Ok(TaskDefRef {
                family: s.to_owned(),
                revision: None,
            }),
            None => Err(bad()),
        }
    }

    /// Resolves a reference (a bare family means its latest ACTIVE revision).
    pub(crate) async fn load_task_definition(
        &self,
        r: &TaskDefRef,
    ) -> Result<Option<(StoredTaskDefinition, u64)>, EcsError> {
        let revision = match r.revision {
            Some(rev) => rev,
            None => match self
                .objects
                .get::<FamilyRecord>(&family_key(&r.family))
                .await?
            {
                Some((fam, _)) => match fam.latest_active {
                    Some(rev) => rev,
                    None => return Ok(None),
                },
                None => return Ok(None),
            },
        };
        self.objects
            .get::<StoredTaskDefinition>(&taskdef_key(&r.family, revision))
            .await
    }
}

pub(crate) async fn register_task_definition(
    ecs: &Ecs,
    req: RegisterTaskDefinitionRequest,
    caller: &Caller,
) -> Result<RegisterTaskDefinitionResponse, EcsError> {
    let size = serde_json::to_vec(&req).map(|v| v.len()).unwrap_or(0);
    if size > MAX_DEFINITION_BYTES {
        return Err(EcsError::Client(format!(
            "The task definition is {size} bytes; the limit is {MAX_DEFINITION_BYTES} bytes."
        )));
    }
    let fkey = family_key(&req.family);
    let stored = ecs
        .objects
        .retry(&fkey, || async {
            let (mut fam, fam_rev) = ecs
                .objects
                .get::<FamilyRecord>(&fkey)
                .await?
                .unwrap_or_default();
            let revision = fam
                .last_revision
                .checked_add(1)
                .ok_or_else(|| EcsError::Client("This family has no revisions left.".into()))?;
            let reg = Registration {
                revision,
                arn: ecs.scope.task_definition(&req.family, revision),
                now: now(),
                registered_by: caller.principal_arn(),
            };
            let td = compute_task_definition(&req, &reg).map_err(|e| EcsError::Client(e.0))?;
            let stored = StoredTaskDefinition {
                task_definition: td,
                tags: req.tags.clone().unwrap_or_default(),
            };
            fam.last_revision = revision;
            fam.latest_active = Some(revision);
            let txn = Txn::new()
                .when(fkey.clone(), fam_rev)
                .put(fkey.clone(), encode(&fam)?)
                .put(taskdef_key(&req.family, revision), encode(&stored)?);
            Ok(Step::Commit(txn, stored))
        })
        .await?;
    tracing::debug!(family = %req.family, revision = stored.task_definition.revision, "Task definition registered.");
    Ok(RegisterTaskDefinitionResponse {
        tags: Some(stored.tags.clone()),
        task_definition: Some(stored.task_definition),
    })
}

pub(crate) async fn describe_task_definition(
    ecs: &Ecs,
    req: DescribeTaskDefinitionRequest,
    _: &Caller,
) -> Result<DescribeTaskDefinitionResponse, EcsError> {
    let r = ecs.parse_task_def_ref(&req.task_definition)?;
    let Some((stored, _)) = ecs.load_task_definition(&r).await? else {
        return Err(EcsError::Client(
            "Unable to describe task definition.".into(),
        ));
    };
    let with_tags = req
        .include
        .unwrap_or_default()
        .contains(&TaskDefinitionField::Tags);
    Ok(DescribeTaskDefinitionResponse {
        task_definition: Some(stored.task_definition),
        tags: with_tags.then_some(stored.tags),
    })
}

/// Sort key that orders by family name, then revision, as AWS lists them.
fn sort_key(td: &TaskDefinition) -> String {
    format!(
        "{}\u{0}{:010}",
        td.family.as_deref().unwrap_or(""),
        td.revision.unwrap_or(0)
    )
}

pub(crate) async fn list_task_definitions(
    ecs: &Ecs,
    req: ListTaskDefinitionsRequest,
    _: &Caller,
) -> Result<ListTaskDefinitionsResponse, EcsError> {
    let size = page_size(req.max_results, 100)?;
    let status = req.status.unwrap_or(TaskDefinitionStatus::Active);
    // Despite its name, ListTaskDefinitions' familyPrefix is the full family name.
    let prefix = match req.family_prefix.as_deref() {
        Some(f) => taskdef_prefix(f),
        None => "ecs/taskdef/".to_owned(),
    };
    let mut items: Vec<(String, String)> = ecs
        .objects
        .list::<StoredTaskDefinition>(&prefix)
        .await?
        .into_iter()
        .filter(|(_, s, _)| s.task_definition.status == Some(status))
        .map(|(_, s, _)| {
            (
                sort_key(&s.task_definition),
                s.task_definition.task_definition_arn.unwrap_or_default(),
            )
        })
        .collect();
    items.sort();
    let descending = req.sort == Some(SortOrder::Desc);
    if descending {
        items.reverse();
    }
    let page = paginate(items, req.next_token.as_deref(), size, descending)?;
    Ok(ListTaskDefinitionsResponse {
        task_definition_arns: Some(page.items),
        next_token: page.next_token,
    })
}

pub(crate) async fn list_task_definition_families(
    ecs: &Ecs,
    req: ListTaskDefinitionFamiliesRequest,
    _: &Caller,
) -> Result<ListTaskDefinitionFamiliesResponse, EcsError> {
    let size = page_size(req.max_results, 100)?;
    let status = req.status.unwrap_or(TaskDefinitionFamilyStatus::Active);
    let prefix = format!("ecs/family/{}", req.family_prefix.as_deref().unwrap_or(""));
    let items = ecs
        .objects
        .list::<FamilyRecord>(&prefix)
        .await?
        .into_iter()
        .filter(|(_, f, _)| match status {
            TaskDefinitionFamilyStatus::Active => f.latest_active.is_some(),
            TaskDefinitionFamilyStatus::Inactive => f.latest_active.is_none(),
            TaskDefinitionFamilyStatus::All => true,
        })
        .map(|(k, _, _)| {
            let family = k.trim_start_matches("ecs/family/").to_owned();
            (format!("{family}\u{0}"), family)
        })
        .collect::<Vec<_>>();
    let mut items = items;
    items.sort();
    let page = paginate(items, req.next_token.as_deref(), size, false)?;
    Ok(ListTaskDefinitionFamiliesResponse {
        families: Some(page.items),
        next_token: page.next_token,
    })
}

/// Changes one revision's status and keeps the family's `latest_active` true.
async fn set_status(
    ecs: &Ecs,
    family: &str,
    revision: i32,
    change: impl Fn(&mut TaskDefinition) -> bool,
) -> Result<Option<TaskDefinition>, EcsError> {
    let fkey = family_key(family);
    let tkey = taskdef_key(family, revision);
    ecs.objects
        .retry(&tkey, || async {
            let Some((mut stored, trev)) = ecs.objects.get::<StoredTaskDefinition>(&tkey).await?
            else {
                return Ok(Step::Done(None));
            };
            if !change(&mut stored.task_definition) {
                return Ok(Step::Done(Some(stored.task_definition)));
            }
            let (mut fam, frev) = ecs
                .objects
                .get::<FamilyRecord>(&fkey)
                .await?
                .unwrap_or_default();
            let revisions = ecs
                .objects
                .list::<StoredTaskDefinition>(&taskdef_prefix(family))
                .await?;
            fam.latest_active = revisions
                .iter()
                .filter(|(_, s, _)| {
                    s.task_definition.revision != Some(revision)
                        && s.task_definition.status == Some(TaskDefinitionStatus::Active)
                })
                .filter_map(|(_, s, _)| s.task_definition.revision)
                .chain(
                    (stored.task_definition.status == Some(TaskDefinitionStatus::Active))
                        .then_some(revision),
                )
                .max();
            let txn = Txn::new()
                .when(tkey.clone(), trev)
                .when(fkey.clone(), frev)
                .put(tkey.clone(), encode(&stored)?)
                .put(fkey.clone(), encode(&fam)?);
            Ok(Step::Commit(txn, Some(stored.task_definition)))
        })
        .await
}

pub(crate) async fn deregister_task_definition(
    ecs: &Ecs,
    req: DeregisterTaskDefinitionRequest,
    _: &Caller,
) -> Result<DeregisterTaskDefinitionResponse, EcsError> {
    let r = ecs.parse_task_def_ref(&req.task_definition)?;
    let Some(revision) = r.revision else {
        return Err(EcsError::Client(
            "A revision is required: deregister 'family:revision' or a task definition ARN.".into(),
        ));
    };
    let td = set_status(ecs, &r.family, revision, |td| {
        if td.status != Some(TaskDefinitionStatus::Active) {
            return false;
        }
        td.status = Some(TaskDefinitionStatus::Inactive);
        td.deregistered_at = Some(now());
        true
    })
    .await?
    .ok_or_else(|| EcsError::Client("The specified task definition does not exist.".into()))?;
    Ok(DeregisterTaskDefinitionResponse {
        task_definition: Some(td),
    })
}

pub(crate) async fn delete_task_definitions(
    ecs: &Ecs,
    req: DeleteTaskDefinitionsRequest,
    _: &Caller,
) -> Result<DeleteTaskDefinitionsResponse, EcsError> {
    if req.task_definitions.is_empty() || req.task_definitions.len() > 10 {
        return Err(EcsError::InvalidParameter(
            "taskDefinitions must name between 1 and 10 task definition revisions.".into(),
        ));
    }
    let mut deleted = Vec::new();
    let mut failures = Vec::new();
    for reference in &req.task_definitions {
        let arn = match ecs.parse_task_def_ref(reference) {
            Ok(TaskDefRef {
                family,
                revision: Some(rev),
            }) => ecs.scope.task_definition(&family, rev),
            _ => reference.clone(),
        };
        let failure = |reason: &str| Failure {
            arn: Some(arn.clone()),
            reason: Some(reason.to_owned()),
            detail: None,
        };
        let r = match ecs.parse_task_def_ref(reference) {
            Ok(TaskDefRef {
                family,
                revision: Some(rev),
            }) => (family, rev),
            _ => {
                failures.push(failure("The specified task definition identifier is invalid. Specify a valid name or ARN and try again."));
                continue;
            }
        };
        let out = set_status(ecs, &r.0, r.1, |td| {
            if td.status != Some(TaskDefinitionStatus::Inactive) {
                return false;
            }
            td.status = Some(TaskDefinitionStatus::DeleteInProgress);
            td.delete_requested_at = Some(now());
            true
        })
        .await?;
        match out {
            None => failures.push(failure("The specified task definition does not exist. Specify a valid account, family, revision and try again.")),
            Some(td) if td.status == Some(TaskDefinitionStatus::Active) => failures.push(failure("The specified task definition is still in ACTIVE status. Please deregister the target and try again.")),
            Some(td) => deleted.push(td),
        }
    }
    Ok(DeleteTaskDefinitionsResponse {
        task_definitions: Some(deleted),
        failures: Some(failures),
    })
}
