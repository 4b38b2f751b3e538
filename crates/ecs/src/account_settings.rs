//! Account settings: per-principal values, account defaults (the root principal's), and
//! AWS's defaults beneath both, as `effectiveSettings` shows them.

use crate::error::{invalid, EcsError};
use crate::objects::{encode, setting_key, Step};
use crate::pagination::{page_size, paginate};
use crate::{Caller, Ecs};
use model::ecs::shapes::{
    ListAccountSettingsRequest, ListAccountSettingsResponse, PutAccountSettingDefaultRequest,
    PutAccountSettingDefaultResponse, PutAccountSettingRequest, PutAccountSettingResponse, Setting,
    SettingName, SettingType,
};
use store::Txn;

const ALL: [SettingName; 11] = [
    SettingName::ServiceLongArnFormat,
    SettingName::TaskLongArnFormat,
    SettingName::ContainerInstanceLongArnFormat,
    SettingName::AwsvpcTrunking,
    SettingName::ContainerInsights,
    SettingName::FargateFIPSMode,
    SettingName::TagResourceAuthorization,
    SettingName::FargateTaskRetirementWaitPeriod,
    SettingName::GuardDutyActivate,
    SettingName::DefaultLogDriverMode,
    SettingName::FargateEventWindows,
];

/// The values a setting accepts, the first being AWS's default.
fn allowed(name: SettingName) -> &'static [&'static str] {
    match name {
        SettingName::ServiceLongArnFormat
        | SettingName::TaskLongArnFormat
        | SettingName::ContainerInstanceLongArnFormat => &["enabled", "disabled"],
        SettingName::AwsvpcTrunking
        | SettingName::FargateFIPSMode
        | SettingName::FargateEventWindows => &["disabled", "enabled"],
        SettingName::ContainerInsights => &["disabled", "enabled", "enhanced"],
        SettingName::TagResourceAuthorization => &["on", "off"],
        SettingName::GuardDutyActivate => &["off", "on"],
        SettingName::FargateTaskRetirementWaitPeriod => &["7", "0", "14"],
        SettingName::DefaultLogDriverMode => &["blocking", "non-blocking"],
    }
}

fn check_value(name: SettingName, value: &str) -> Result<(), EcsError> {
    let ok = allowed(name);
    if ok.contains(&value) {
        Ok(())
    } else {
        invalid(format!(
            "Invalid value '{value}' for account setting {}: use one of {}.",
            name.as_str(),
            ok.join(", ")
        ))
    }
}

async fn put(
    ecs: &Ecs,
    principal: String,
    name: SettingName,
    value: String,
) -> Result<Setting, EcsError> {
    check_value(name, &value)?;
    let key = setting_key(&principal, name.as_str());
    let setting = Setting {
        name: Some(name),
        value: Some(value),
        principal_arn: Some(principal),
        type_: Some(SettingType::User),
    };
    ecs.objects
        .retry(&key, || async {
            let rev = ecs
                .objects
                .get::<Setting>(&key)
                .await?
                .map_or(0, |(_, r)| r);
            Ok(Step::Commit(
                Txn::new()
                    .when(key.clone(), rev)
                    .put(key.clone(), encode(&setting)?),
                setting.clone(),
            ))
        })
        .await
}

fn check_principal(p: &str) -> Result<(), EcsError> {
    if p.starts_with("arn:aws:iam::") && p.len() > "arn:aws:iam::".len() {
        Ok(())
    } else {
        invalid(format!(
            "principalArn '{p}' is not an IAM user, role or root ARN."
        ))
    }
}

pub(crate) async fn put_account_setting(
    ecs: &Ecs,
    req: PutAccountSettingRequest,
    caller: &Caller,
) -> Result<PutAccountSettingResponse, EcsError> {
    let principal = req
        .principal_arn
        .clone()
        .unwrap_or_else(|| caller.principal_arn().to_owned());
    check_principal(&principal)?;
    let s = put(ecs, principal, req.name, req.value).await?;
    Ok(PutAccountSettingResponse { setting: Some(s) })
}

pub(crate) async fn put_account_setting_default(
    ecs: &Ecs,
    req: PutAccountSettingDefaultRequest,
    _: &Caller,
) -> Result<PutAccountSettingDefaultResponse, EcsError> {
    let s = put(ecs, ecs.scope.root_principal(), req.name, req.value).await?;
    Ok(PutAccountSettingDefaultResponse { setting: Some(s) })
}

pub(crate) async fn list_account_settings(
    ecs: &Ecs,
    req: ListAccountSettingsRequest,
    caller: &Caller,
) -> Result<ListAccountSettingsResponse, EcsError> {
    if req.value.is_some() && req.name.is_none() {
        return invalid("value can only be used together with name.");
    }
    let size = match req.max_results {
        None => 10,
        Some(n) => page_size(Some(n), 10)?,
    };
    let principal = req
        .principal_arn
        .clone()
        .unwrap_or_else(|| caller.principal_arn().to_owned());
    let root = ecs.scope.root_principal();
    let names: Vec<SettingName> = match req.name {
        Some(n) => vec![n],
        None => ALL.to_vec(),
    };
    let mut items = Vec::new();
    for name in names {
        let own = ecs
            .objects
            .get::<Setting>(&setting_key(&principal, name.as_str()))
            .await?
            .map(|(s, _)| s);
        let setting = if req.effective_settings == Some(true) {
            let fallback = ecs
                .objects
                .get::<Setting>(&setting_key(&root, name.as_str()))
                .await?
                .map(|(s, _)| s);
            own.or(fallback).or_else(|| {
                Some(Setting {
                    name: Some(name),
                    value: allowed(name).first().map(|v| (*v).to_owned()),
                    principal_arn: Some(principal.clone()),
                    type_: Some(SettingType::AwsManaged),
                })
            })
        } else {
            own
        };
        if let Some(s) = setting {
            if req.value.is_some() && req.value != s.value {
                continue;
            }
            items.push((name.as_str().to_owned(), s));
        }
    }
    items.sort_by(|a, b| a.0.cmp(&b.0));
    let page = paginate(items, req.next_token.as_deref(), size, false)?;
    Ok(ListAccountSettingsResponse {
        settings: Some(page.items),
        next_token: page.next_token,
    })
}
