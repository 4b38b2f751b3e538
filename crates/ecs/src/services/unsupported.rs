//! The members of CreateService and UpdateService that only mean something with an AWS
//! service Stevedore does not have (Cloud Map, Service Connect, VPC Lattice, Amazon EBS,
//! gateway connectors, CloudWatch metric configurations, Availability Zone rebalancing).
//!
//! Such a member is refused with InvalidParameterException naming what is missing,
//! never accepted and ignored: a script that relies on it must learn it did not happen.
//! An empty list, a disabled configuration or `DISABLED` asks for nothing and passes.

use crate::error::{invalid, EcsError};
use model::ecs::shapes::{
    AvailabilityZoneRebalancing, DeploymentController, DeploymentControllerType, GatewayConnector,
    MonitoringConfiguration, ServiceConnectConfiguration, ServiceRegistry,
    ServiceVolumeConfiguration, VpcLatticeConfiguration,
};

/// Borrowed view of the members CreateService and UpdateService share.
#[derive(Default)]
pub(crate) struct Unhonoured<'a> {
    pub service_registries: Option<&'a [ServiceRegistry]>,
    pub service_connect: Option<&'a ServiceConnectConfiguration>,
    pub volume_configurations: Option<&'a [ServiceVolumeConfiguration]>,
    pub vpc_lattice: Option<&'a [VpcLatticeConfiguration]>,
    pub gateway_connectors: Option<&'a [GatewayConnector]>,
    pub monitoring: Option<&'a MonitoringConfiguration>,
    pub az_rebalancing: Option<AvailabilityZoneRebalancing>,
    pub deployment_controller: Option<&'a DeploymentController>,
}

/// The [`Unhonoured`] view of a CreateService or UpdateService request (both name these
/// members alike).
macro_rules! unhonoured_of {
    ($req:expr) => {
        $crate::services::unsupported::Unhonoured {
            service_registries: $req.service_registries.as_deref(),
            service_connect: $req.service_connect_configuration.as_ref(),
            volume_configurations: $req.volume_configurations.as_deref(),
            vpc_lattice: $req.vpc_lattice_configurations.as_deref(),
            gateway_connectors: $req.gateway_connectors.as_deref(),
            monitoring: $req.monitoring.as_ref(),
            az_rebalancing: $req.availability_zone_rebalancing,
            deployment_controller: $req.deployment_controller.as_ref(),
        }
    };
}
pub(crate) use unhonoured_of;

fn given<T>(v: Option<&[T]>) -> bool {
    v.is_some_and(|v| !v.is_empty())
}

/// Refuses the first member that asks for something Stevedore cannot do.
pub(crate) fn check_unhonoured(u: &Unhonoured<'_>) -> Result<(), EcsError> {
    if given(u.service_registries) {
        return invalid("serviceRegistries is not supported by Stevedore: it registers tasks with AWS Cloud Map, which Stevedore does not have. Put the service behind a target group (loadBalancers) instead.");
    }
    if u.service_connect.is_some_and(|c| c.enabled) {
        return invalid("serviceConnectConfiguration with enabled=true is not supported by Stevedore: Service Connect needs AWS Cloud Map namespaces and the Service Connect proxy, which Stevedore does not have. Omit it or set enabled to false.");
    }
    if given(u.volume_configurations) {
        return invalid("volumeConfigurations is not supported by Stevedore: it configures Amazon EBS volumes attached at launch, and Stevedore has no block storage service. Use the task definition's volumes (bind mounts or Docker volumes) instead.");
    }
    if given(u.vpc_lattice) {
        return invalid("vpcLatticeConfigurations is not supported by Stevedore: it registers tasks with Amazon VPC Lattice, which Stevedore does not have. Use loadBalancers with an ELBv2 target group instead.");
    }
    if given(u.gateway_connectors) {
        return invalid("gatewayConnectors is not supported by Stevedore: it needs an Amazon VPC Lattice or API gateway integration, which Stevedore does not have.");
    }
    if u.monitoring.is_some() {
        return invalid("monitoring is not supported by Stevedore: it configures CloudWatch metrics that Stevedore's services do not publish.");
    }
    if u.az_rebalancing == Some(AvailabilityZoneRebalancing::Enabled) {
        return invalid("availabilityZoneRebalancing ENABLED is not supported by Stevedore: the service scheduler places tasks with the service's placement strategy but does not move running tasks between Availability Zones. Omit it or use DISABLED.");
    }
    if let Some(c) = u.deployment_controller {
        if c.type_ != DeploymentControllerType::Ecs {
            return invalid(format!(
                "deploymentController type {} is not supported by Stevedore yet; use ECS.",
                c.type_.as_str()
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn none() -> Unhonoured<'static> {
        Unhonoured {
            service_registries: None,
            service_connect: None,
            volume_configurations: None,
            vpc_lattice: None,
            gateway_connectors: None,
            monitoring: None,
            az_rebalancing: None,
            deployment_controller: None,
        }
    }

    fn message(u: &Unhonoured<'_>) -> String {
        match check_unhonoured(u) {
            Err(EcsError::InvalidParameter(m)) => m,
            other => panic!("expected InvalidParameter, got {other:?}"),
        }
    }

    #[test]
    fn nothing_asked_passes_and_empty_or_disabled_asks_nothing() {
        assert!(check_unhonoured(&none()).is_ok());
        let off = ServiceConnectConfiguration {
            enabled: false,
            ..Default::default()
        };
        let u = Unhonoured {
            service_registries: Some(&[]),
            service_connect: Some(&off),
            volume_configurations: Some(&[]),
            vpc_lattice: Some(&[]),
            gateway_connectors: Some(&[]),
            az_rebalancing: Some(AvailabilityZoneRebalancing::Disabled),
            ..none()
        };
        assert!(check_unhonoured(&u).is_ok());
    }

    #[test]
    fn each_unhonoured_member_is_refused_naming_what_is_missing() {
        let on = ServiceConnectConfiguration {
            enabled: true,
            ..Default::default()
        };
        assert!(message(&Unhonoured {
            service_connect: Some(&on),
            ..none()
        })
        .contains("Cloud Map"));
        let reg = [ServiceRegistry::default()];
        assert!(message(&Unhonoured {
            service_registries: Some(&reg),
            ..none()
        })
        .starts_with("serviceRegistries"));
        assert!(message(&Unhonoured {
            az_rebalancing: Some(AvailabilityZoneRebalancing::Enabled),
            ..none()
        })
        .contains("DISABLED"));
        let ext = DeploymentController {
            type_: DeploymentControllerType::External,
        };
        assert!(message(&Unhonoured {
            deployment_controller: Some(&ext),
            ..none()
        })
        .contains("EXTERNAL"));
    }
}
