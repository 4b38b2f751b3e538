//! ECS ARNs in AWS's long format, built and parsed in one place.

use std::fmt;

/// Where ARNs live: the partition is always `aws`; region and account are configured.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArnScope {
    /// Region, e.g. `us-east-1`.
    pub region: String,
    /// Twelve-digit account id.
    pub account_id: String,
}

/// An ECS resource named by an ARN.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EcsResource {
    /// `cluster/<name>`
    Cluster {
        /// Cluster name.
        name: String,
    },
    /// `task-definition/<family>:<revision>`
    TaskDefinition {
        /// Family.
        family: String,
        /// Revision (≥ 1).
        revision: i32,
    },
    /// `container-instance/<cluster>/<id>`
    ContainerInstance {
        /// Cluster name.
        cluster: String,
        /// 32-hex-digit id.
        id: String,
    },
    /// `task/<cluster>/<id>`
    Task {
        /// Cluster name.
        cluster: String,
        /// 32-hex-digit id.
        id: String,
    },
    /// `service/<cluster>/<name>`
    Service {
        /// Cluster name.
        cluster: String,
        /// Service name.
        name: String,
    },
    /// `service-deployment/<cluster>/<service>/<id>`
    ServiceDeployment {
        /// Cluster name.
        cluster: String,
        /// Service name.
        service: String,
        /// The deployment's id.
        id: String,
    },
    /// `service-revision/<cluster>/<service>/<id>`
    ServiceRevision {
        /// Cluster name.
        cluster: String,
        /// Service name.
        service: String,
        /// The revision's id.
        id: String,
    },
}

/// A string that is not an ECS ARN of this partition.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Invalid ARN: '{0}' is not an Amazon ECS resource ARN.")]
pub struct ArnParseError(pub String);

impl ArnScope {
    fn prefix(&self) -> String {
        format!("arn:aws:ecs:{}:{}:", self.region, self.account_id)
    }
    /// ARN of a cluster.
    pub fn cluster(&self, name: &str) -> String {
        format!("{}cluster/{name}", self.prefix())
    }
    /// ARN of a task definition revision.
    pub fn task_definition(&self, family: &str, revision: i32) -> String {
        format!("{}task-definition/{family}:{revision}", self.prefix())
    }
    /// ARN of a container instance.
    pub fn container_instance(&self, cluster: &str, id: &str) -> String {
        format!("{}container-instance/{cluster}/{id}", self.prefix())
    }
    /// ARN of a task.
    pub fn task(&self, cluster: &str, id: &str) -> String {
        format!("{}task/{cluster}/{id}", self.prefix())
    }
    /// ARN of a service.
    pub fn service(&self, cluster: &str, name: &str) -> String {
        format!("{}service/{cluster}/{name}", self.prefix())
    }
    /// ARN of a task set (`id` is `ecs-svc/` and digits, so the ARN has two more
    /// path elements than the service's).
    pub fn task_set(&self, cluster: &str, service: &str, id: &str) -> String {
        format!("{}task-set/{cluster}/{service}/{id}", self.prefix())
    }
    /// ARN of a service deployment (one UpdateService's rollout, as history).
    pub fn service_deployment(&self, cluster: &str, service: &str, id: &str) -> String {
        format!(
            "{}service-deployment/{cluster}/{service}/{id}",
            self.prefix()
        )
    }
    /// ARN of a service revision (the configuration one deployment rolled out).
    pub fn service_revision(&self, cluster: &str, service: &str, id: &str) -> String {
        format!("{}service-revision/{cluster}/{service}/{id}", self.prefix())
    }
    /// The root principal of the account, used as `registeredBy` and the default principal.
    pub fn root_principal(&self) -> String {
        format!("arn:aws:iam::{}:root", self.account_id)
    }

    /// Whether `reference` is an ECS ARN of another region, which ECS refuses wherever it
    /// takes a reference (`InvalidParameterException: Invalid Region in ARN`) rather than
    /// reading its last segment as a name.
    pub fn is_foreign_region(&self, reference: &str) -> bool {
        reference
            .strip_prefix("arn:aws:ecs:")
            .and_then(|rest| rest.split(':').next())
            .is_some_and(|region| region != self.region)
    }

    /// Parses an ECS ARN of this region and account.
    pub fn parse(&self, arn: &str) -> Result<EcsResource, ArnParseError> {
        let err = || ArnParseError(arn.to_owned());
        let rest = arn.strip_prefix(&self.prefix()).ok_or_else(err)?;
        let (kind, path) = rest.split_once('/').ok_or_else(err)?;
        let parts: Vec<&str> = path.split('/').collect();
        let nonempty = |s: &&str| !s.is_empty();
        match (kind, parts.as_slice()) {
            ("cluster", [name]) if nonempty(name) => Ok(EcsResource::Cluster {
                name: (*name).to_owned(),
            }),
            ("task-definition", [fr]) => {
                let (family, rev) = fr.rsplit_once(':').ok_or_else(err)?;
                let revision: i32 = rev.parse().map_err(|_| err())?;
                if family.is_empty() || revision < 1 {
                    return Err(err());
                }
                Ok(EcsResource::TaskDefinition {
                    family: family.to_owned(),
                    revision,
                })
            }
            ("container-instance", [c, id]) if nonempty(c) && nonempty(id) => {
                Ok(EcsResource::ContainerInstance {
                    cluster: (*c).to_owned(),
                    id: (*id).to_owned(),
                })
            }
            ("task", [c, id]) if nonempty(c) && nonempty(id) => Ok(EcsResource::Task {
                cluster: (*c).to_owned(),
                id: (*id).to_owned(),
            }),
            ("service", [c, n]) if nonempty(c) && nonempty(n) => Ok(EcsResource::Service {
                cluster: (*c).to_owned(),
                name: (*n).to_owned(),
            }),
            ("service-deployment", [c, n, id]) if [c, n, id].iter().all(|p| nonempty(p)) => {
                Ok(EcsResource::ServiceDeployment {
                    cluster: (*c).to_owned(),
                    service: (*n).to_owned(),
                    id: (*id).to_owned(),
                })
            }
            ("service-revision", [c, n, id]) if [c, n, id].iter().all(|p| nonempty(p)) => {
                Ok(EcsResource::ServiceRevision {
                    cluster: (*c).to_owned(),
                    service: (*n).to_owned(),
                    id: (*id).to_owned(),
                })
            }
            _ => Err(err()),
        }
    }
}

impl fmt::Display for ArnScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.region, self.account_id)
    }
}

/// The last path element of an ARN, or the string itself when it is a bare name or id:
/// ECS accepts both wherever it takes a reference.
pub fn short_name(reference: &str) -> &str {
    if reference.starts_with("arn:") {
        reference.rsplit('/').next().unwrap_or(reference)
    } else {
        reference
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope() -> ArnScope {
        ArnScope {
            region: "us-east-1".into(),
            account_id: "000000000000".into(),
        }
    }

    #[test]
    fn built_arns_parse_back_to_their_resource() {
        let s = scope();
        assert_eq!(
            s.parse(&s.cluster("web")),
            Ok(EcsResource::Cluster { name: "web".into() })
        );
        assert_eq!(
            s.parse(&s.task_definition("fam", 3)),
            Ok(EcsResource::TaskDefinition {
                family: "fam".into(),
                revision: 3
            })
        );
        assert_eq!(
            s.parse(&s.container_instance("c", "abc")),
            Ok(EcsResource::ContainerInstance {
                cluster: "c".into(),
                id: "abc".into()
            })
        );
    }

    #[test]
    fn arns_of_other_accounts_or_kinds_are_refused() {
        let s = scope();
        assert!(s
            .parse("arn:aws:ecs:us-east-1:111111111111:cluster/x")
            .is_err());
        assert!(s
            .parse("arn:aws:ecs:us-east-1:000000000000:widget/x")
            .is_err());
        assert!(s
            .parse("arn:aws:ecs:us-east-1:000000000000:task-definition/x:0")
            .is_err());
        assert!(s.parse("cluster/x").is_err());
        assert!(s
            .parse("arn:aws:ecs:us-east-1:000000000000:service-deployment/c/s")
            .is_err());
        assert!(s
            .parse("arn:aws:ecs:us-east-1:000000000000:service-revision/c//1")
            .is_err());
    }

    #[test]
    fn deployment_and_revision_arns_parse_back() {
        let s = scope();
        assert_eq!(
            s.parse(&s.service_deployment("c", "web", "abc")),
            Ok(EcsResource::ServiceDeployment {
                cluster: "c".into(),
                service: "web".into(),
                id: "abc".into()
            })
        );
        assert_eq!(
            s.parse(&s.service_revision("c", "web", "123")),
            Ok(EcsResource::ServiceRevision {
                cluster: "c".into(),
                service: "web".into(),
                id: "123".into()
            })
        );
    }

    #[test]
    fn only_ecs_arns_of_another_region_are_foreign() {
        let s = scope();
        assert!(s.is_foreign_region("arn:aws:ecs:us-east-2:000000000000:cluster/x"));
        assert!(!s.is_foreign_region("arn:aws:ecs:us-east-1:000000000000:cluster/x"));
        assert!(!s.is_foreign_region("x"));
        assert!(!s.is_foreign_region("arn:aws:iam::000000000000:role/r"));
    }

    #[test]
    fn short_name_takes_the_last_arn_segment() {
        assert_eq!(short_name("arn:aws:ecs:us-east-1:0:cluster/web"), "web");
        assert_eq!(short_name("web"), "web");
    }
}
