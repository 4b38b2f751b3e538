//! Service-level tests: requests through the operations over a real SQLite store,
//! checking the state and the XML botocore reads.

#![allow(clippy::unwrap_used)] // tests may unwrap

use super::*;
use crate::groups::Direction;

struct Fixture {
    ec2: Ec2,
    _dir: tempfile::TempDir,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = store::SqliteStore::open(store::SqliteConfig::new(dir.path().join("state.db")))
        .expect("store opens");
    Fixture {
        ec2: Ec2::new(Arc::new(store), "us-east-1", "000000000000"),
        _dir: dir,
    }
}

fn q(pairs: &[(&str, &str)]) -> QueryParams {
    let body: Vec<String> = pairs
        .iter()
        .map(|(k, v)| format!("{k}={}", v.replace('/', "%2F")))
        .collect();
    wire::query::parse_form(body.join("&").as_bytes()).unwrap()
}

#[tokio::test]
async fn the_default_vpc_has_a_subnet_per_zone_and_a_default_group_admitting_itself() {
    let f = fixture();
    let s = f.ec2.snapshot().await.unwrap();
    let vpc = s.default_vpc().unwrap();
    assert_eq!(vpc.cidr.to_string(), "172.31.0.0/16");
    let cidrs: Vec<String> = s.subnets.values().map(|n| n.cidr.to_string()).collect();
    assert_eq!(cidrs.len(), 3);
    for c in ["172.31.0.0/20", "172.31.16.0/20", "172.31.32.0/20"] {
        assert!(cidrs.contains(&c.to_owned()), "{cidrs:?}");
    }
    let g = s.default_group(&vpc.id).unwrap();
    assert_eq!(g.ingress.len(), 1);
    assert_eq!(
        g.ingress[0].peer,
        Peer::Group {
            group_id: g.id.clone(),
            user_id: "000000000000".into()
        }
    );
    assert_eq!(g.egress[0].peer, Peer::Cidr("0.0.0.0/0".parse().unwrap()));
    // A second read does not make a second default VPC.
    assert_eq!(f.ec2.snapshot().await.unwrap().vpcs.len(), 1);
}

#[tokio::test]
async fn subnets_must_lie_inside_their_vpc_and_not_overlap() {
    let f = fixture();
    let out = f
        .ec2
        .create_vpc(&q(&[("CidrBlock", "10.1.0.0/16")]))
        .await
        .unwrap();
    let vpc = out
        .split("<vpcId>")
        .nth(1)
        .unwrap()
        .split('<')
        .next()
        .unwrap()
        .to_owned();
    f.ec2
        .create_subnet(&q(&[("VpcId", &vpc), ("CidrBlock", "10.1.1.0/24")]))
        .await
        .unwrap();
    let err = f
        .ec2
        .create_subnet(&q(&[("VpcId", &vpc), ("CidrBlock", "10.2.0.0/24")]))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "InvalidSubnet.Range");
    let err = f
        .ec2
        .create_subnet(&q(&[("VpcId", &vpc), ("CidrBlock", "10.1.1.128/25")]))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "InvalidSubnet.Conflict");
    assert_eq!(
        err.to_string(),
        "The CIDR '10.1.1.128/25' conflicts with another subnet"
    );
    let err = f
        .ec2
        .create_subnet(&q(&[("VpcId", "vpc-nope"), ("CidrBlock", "10.1.2.0/24")]))
        .await
        .unwrap_err();
    assert_eq!(err.to_string(), "The vpc ID 'vpc-nope' does not exist");
    let err = f.ec2.delete_vpc(&q(&[("VpcId", &vpc)])).await.unwrap_err();
    assert_eq!(err.code(), "DependencyViolation");
}

#[tokio::test]
async fn rules_fan_out_per_peer_duplicates_are_refused_and_revoke_removes_them() {
    let f = fixture();
    let a = f
        .ec2
        .create_security_group(&q(&[("GroupName", "a"), ("GroupDescription", "A")]))
        .await
        .unwrap();
    let a = a
        .split("<groupId>")
        .nth(1)
        .unwrap()
        .split('<')
        .next()
        .unwrap()
        .to_owned();
    let b = f
        .ec2
        .create_security_group(&q(&[("GroupName", "b"), ("GroupDescription", "B")]))
        .await
        .unwrap();
    let b = b
        .split("<groupId>")
        .nth(1)
        .unwrap()
        .split('<')
        .next()
        .unwrap()
        .to_owned();
    let add = q(&[
        ("GroupId", &a),
        ("IpPermissions.1.IpProtocol", "tcp"),
        ("IpPermissions.1.FromPort", "80"),
        ("IpPermissions.1.ToPort", "80"),
        ("IpPermissions.1.IpRanges.1.CidrIp", "10.0.0.18/8"),
        ("IpPermissions.1.Groups.1.GroupId", &b),
    ]);
    let out = f.ec2.authorize(&add, Direction::Ingress).await.unwrap();
    assert_eq!(out.matches("<securityGroupRuleId>").count(), 2, "{out}");
    let s = f.ec2.snapshot().await.unwrap();
    assert_eq!(
        s.groups[&a].ingress[0].peer,
        Peer::Cidr("10.0.0.0/8".parse().unwrap())
    );
    let err = f.ec2.authorize(&add, Direction::Ingress).await.unwrap_err();
    assert_eq!(err.code(), "InvalidPermission.Duplicate");
    assert_eq!(err.to_string(), "the specified rule \"peer: 10.0.0.0/8, TCP, from port: 80, to port: 80, ALLOW\" already exists");
    // b is referenced by a's rule: it cannot go.
    let err = f
        .ec2
        .delete_security_group(&q(&[("GroupId", &b)]))
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("resource {b} has a dependent object")
    );
    let out = f.ec2.revoke(&add, Direction::Ingress).await.unwrap();
    assert_eq!(out.matches("<securityGroupRuleId>").count(), 2, "{out}");
    assert!(f.ec2.snapshot().await.unwrap().groups[&a]
        .ingress
        .is_empty());
    // Revoking again: the groups are in the default VPC, where AWS answers true with
    // the unknown permissions rather than an error.
    let out = f.ec2.revoke(&add, Direction::Ingress).await.unwrap();
    assert!(out.contains("<unknownIpPermissionSet><item>"), "{out}");
    f.ec2
        .delete_security_group(&q(&[("GroupId", &b)]))
        .await
        .unwrap();
    let err = f
        .ec2
        .delete_security_group(&q(&[("GroupId", &b)]))
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("The security group '{b}' does not exist")
    );
}

#[tokio::test]
async fn group_names_are_unique_per_vpc_and_default_cannot_go() {
    let f = fixture();
    f.ec2
        .create_security_group(&q(&[("GroupName", "Web"), ("GroupDescription", "w")]))
        .await
        .unwrap();
    let err = f
        .ec2
        .create_security_group(&q(&[("GroupName", "web"), ("GroupDescription", "w")]))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "InvalidGroup.Duplicate");
    let err = f
        .ec2
        .create_security_group(&q(&[("GroupName", "sg-x"), ("GroupDescription", "w")]))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "InvalidParameterValue");
    let err = f
        .ec2
        .delete_security_group(&q(&[("GroupName", "default")]))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "CannotDelete");
}

/// Groups held by a load balancer or an instance, as the binary reports them.
struct Held(Vec<Vec<String>>);

#[async_trait::async_trait]
impl GroupUsers for Held {
    async fn groups_in_use(&self) -> Result<Vec<Vec<String>>, String> {
        Ok(self.0.clone())
    }
}

#[tokio::test]
async fn a_group_a_load_balancer_or_instance_holds_cannot_be_deleted() {
    let mut f = fixture();
    let id = |xml: &str| {
        let start = xml.find("<groupId>").unwrap() + "<groupId>".len();
        xml[start..start + xml[start..].find('<').unwrap()].to_owned()
    };
    let held = id(&f
        .ec2
        .create_security_group(&q(&[("GroupName", "lb"), ("GroupDescription", "l")]))
        .await
        .unwrap());
    let free = id(&f
        .ec2
        .create_security_group(&q(&[("GroupName", "free"), ("GroupDescription", "f")]))
        .await
        .unwrap());
    f.ec2
        .set_group_users(Arc::new(Held(vec![vec!["sg-other".into(), held.clone()]])));
    let err = f
        .ec2
        .delete_security_group(&q(&[("GroupId", &held)]))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "DependencyViolation");
    assert_eq!(
        err.to_string(),
        format!("resource {held} has a dependent object")
    );
    f.ec2
        .delete_security_group(&q(&[("GroupId", &free)]))
        .await
        .unwrap();
}

#[tokio::test]
async fn ports_are_checked_and_all_traffic_rules_show_no_ports() {
    let f = fixture();
    let s = f.ec2.snapshot().await.unwrap();
    let g = s
        .default_group(&s.default_vpc().unwrap().id)
        .unwrap()
        .id
        .clone();
    for (proto, from, to) in [
        ("tcp", "90", "80"),
        ("udp", "0", "70000"),
        ("bogus", "1", "1"),
    ] {
        let err = f
            .ec2
            .authorize(
                &q(&[
                    ("GroupId", &g),
                    ("IpPermissions.1.IpProtocol", proto),
                    ("IpPermissions.1.FromPort", from),
                    ("IpPermissions.1.ToPort", to),
                    ("IpPermissions.1.IpRanges.1.CidrIp", "1.2.3.4/32"),
                ]),
                Direction::Ingress,
            )
            .await
            .unwrap_err();
        assert_eq!(err.code(), "InvalidParameterValue", "{proto}");
    }
    let out = f
        .ec2
        .describe_security_groups(&q(&[("GroupId.1", &g)]))
        .await
        .unwrap();
    assert!(out.contains("<ipPermissionsEgress><item><ipProtocol>-1</ipProtocol><groups></groups><ipRanges><item><cidrIp>0.0.0.0/0</cidrIp></item></ipRanges>"), "{out}");
    let err = f
        .ec2
        .describe_security_groups(&q(&[("Filter.1.Name", "bogus"), ("Filter.1.Value.1", "x")]))
        .await
        .unwrap_err();
    assert_eq!(err.to_string(), "The filter 'bogus' is invalid");
    let out = f
        .ec2
        .describe_security_groups(&q(&[
            ("Filter.1.Name", "group-name"),
            ("Filter.1.Value.1", "def*"),
        ]))
        .await
        .unwrap();
    assert_eq!(out.matches("<groupName>").count(), 1);
}

#[tokio::test]
async fn a_network_resolves_to_its_subnet_and_the_default_group_when_none_is_named() {
    let f = fixture();
    let s = f.ec2.snapshot().await.unwrap();
    let subnet = s.subnets.values().next().unwrap().id.clone();
    let n = f
        .ec2
        .resolve_network(std::slice::from_ref(&subnet), &[])
        .await
        .unwrap();
    assert_eq!(
        n.security_groups,
        vec![s.default_group(&n.vpc_id).unwrap().id.clone()]
    );
    let err = f
        .ec2
        .resolve_network(&["subnet-nope".into()], &[])
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "The subnet ID 'subnet-nope' does not exist"
    );
    let err = f
        .ec2
        .resolve_network(&[subnet], &["sg-nope".into()])
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "The security group 'sg-nope' does not exist"
    );
}

#[test]
fn model_names_are_sorted_and_every_served_operation_is_in_the_model() {
    let names = crate::model_names::MODEL_OPERATIONS;
    assert!(names.windows(2).all(|w| w[0] < w[1]));
    for op in Operation::ALL {
        assert!(names.binary_search(&op.name()).is_ok(), "{op:?}");
    }
    assert_eq!(
        Operation::from_name("CreateLaunchTemplate"),
        Some(Operation::Other("CreateLaunchTemplate"))
    );
    assert_eq!(Operation::from_name("NoSuchAction"), None);
}
