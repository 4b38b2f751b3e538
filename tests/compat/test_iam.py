"""IAM through boto3 and the aws CLI: users and access keys, roles with trust policies,
inline and managed policies (AWS's included), instance profiles, the ECS service-linked
role, and IAM's errors (NoSuchEntity, EntityAlreadyExists, DeleteConflict, LimitExceeded,
MalformedPolicyDocument, ValidationError) as botocore's modelled exceptions.

IAM and STS calls of a non-root caller are not authorized yet (another change adds
authorization); these tests call IAM as the account root (the admin key).
"""

from __future__ import annotations

import json

import botocore.exceptions
import pytest

from conftest import ACCOUNT_ID, make_client, unique

ALLOW_ECS_READ = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": ["ecs:Describe*", "ecs:List*"], "Resource": "*"}],
}


def trust(principal: dict) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Principal": principal, "Action": "sts:AssumeRole"}],
        }
    )


@pytest.fixture(scope="module")
def iam(server):
    return make_client(server, "iam")


def code(info) -> str:
    return info.value.response["Error"]["Code"]


def test_user_lifecycle_with_path_tags_and_listing(iam):
    name = unique("user")
    created = iam.create_user(UserName=name, Path="/team/", Tags=[{"Key": "k", "Value": "v"}])["User"]
    assert created["UserName"] == name
    assert created["Arn"] == f"arn:aws:iam::{ACCOUNT_ID}:user/team/{name}"
    assert created["UserId"].startswith("AIDA") and len(created["UserId"]) == 21
    got = iam.get_user(UserName=name)["User"]
    assert got["UserId"] == created["UserId"]
    assert got["Tags"] == [{"Key": "k", "Value": "v"}]
    listed = iam.list_users(PathPrefix="/team/")["Users"]
    assert name in [u["UserName"] for u in listed]
    with pytest.raises(iam.exceptions.EntityAlreadyExistsException):
        iam.create_user(UserName=name)
    iam.delete_user(UserName=name)
    with pytest.raises(iam.exceptions.NoSuchEntityException) as info:
        iam.get_user(UserName=name)
    assert info.value.response["Error"]["Message"] == f"The user with name {name} cannot be found."
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404


def test_access_keys_are_limited_to_two_and_can_be_deactivated(iam):
    name = unique("keys")
    iam.create_user(UserName=name)
    first = iam.create_access_key(UserName=name)["AccessKey"]
    assert first["AccessKeyId"].startswith("AKIA") and len(first["AccessKeyId"]) == 20
    assert len(first["SecretAccessKey"]) == 40 and first["Status"] == "Active"
    iam.create_access_key(UserName=name)
    with pytest.raises(iam.exceptions.LimitExceededException) as info:
        iam.create_access_key(UserName=name)
    assert "AccessKeysPerUser: 2" in info.value.response["Error"]["Message"]
    iam.update_access_key(UserName=name, AccessKeyId=first["AccessKeyId"], Status="Inactive")
    meta = {k["AccessKeyId"]: k["Status"] for k in iam.list_access_keys(UserName=name)["AccessKeyMetadata"]}
    assert meta[first["AccessKeyId"]] == "Inactive" and len(meta) == 2
    with pytest.raises(iam.exceptions.DeleteConflictException):
        iam.delete_user(UserName=name)
    for key_id in meta:
        iam.delete_access_key(UserName=name, AccessKeyId=key_id)
    iam.delete_user(UserName=name)


def test_inline_user_policies_round_trip_as_documents(iam):
    name = unique("inline")
    iam.create_user(UserName=name)
    iam.put_user_policy(UserName=name, PolicyName="read", PolicyDocument=json.dumps(ALLOW_ECS_READ))
    assert iam.list_user_policies(UserName=name)["PolicyNames"] == ["read"]
    doc = iam.get_user_policy(UserName=name, PolicyName="read")["PolicyDocument"]
    assert doc == ALLOW_ECS_READ
    with pytest.raises(iam.exceptions.DeleteConflictException) as info:
        iam.delete_user(UserName=name)
    assert info.value.response["Error"]["Message"] == "Cannot delete entity, must delete policies first."
    iam.delete_user_policy(UserName=name, PolicyName="read")
    iam.delete_user(UserName=name)


def test_malformed_policy_documents_are_refused_with_iams_messages(iam):
    name = unique("bad")
    iam.create_user(UserName=name)
    with pytest.raises(iam.exceptions.MalformedPolicyDocumentException) as info:
        iam.put_user_policy(UserName=name, PolicyName="p", PolicyDocument="{not json")
    assert info.value.response["Error"]["Message"] == "Syntax errors in policy."
    no_resource = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "ecs:*"}]}
    with pytest.raises(iam.exceptions.MalformedPolicyDocumentException):
        iam.put_user_policy(UserName=name, PolicyName="p", PolicyDocument=json.dumps(no_resource))
    with pytest.raises(iam.exceptions.MalformedPolicyDocumentException):
        iam.create_role(RoleName=unique("r"), AssumeRolePolicyDocument=json.dumps(ALLOW_ECS_READ))
    iam.delete_user(UserName=name)


def test_roles_answer_their_trust_policy_and_take_tags(iam):
    name = unique("role")
    doc = trust({"Service": "ecs-tasks.amazonaws.com"})
    role = iam.create_role(RoleName=name, AssumeRolePolicyDocument=doc, Description="d", MaxSessionDuration=7200)["Role"]
    assert role["Arn"] == f"arn:aws:iam::{ACCOUNT_ID}:role/{name}"
    assert role["RoleId"].startswith("AROA")
    got = iam.get_role(RoleName=name)["Role"]
    assert got["AssumeRolePolicyDocument"] == json.loads(doc)
    assert got["MaxSessionDuration"] == 7200
    iam.tag_role(RoleName=name, Tags=[{"Key": "team", "Value": "a"}])
    assert iam.get_role(RoleName=name)["Role"]["Tags"] == [{"Key": "team", "Value": "a"}]
    other = trust({"AWS": f"arn:aws:iam::{ACCOUNT_ID}:root"})
    iam.update_assume_role_policy(RoleName=name, PolicyDocument=other)
    assert iam.get_role(RoleName=name)["Role"]["AssumeRolePolicyDocument"] == json.loads(other)
    assert name in [r["RoleName"] for r in iam.list_roles()["Roles"]]
    iam.put_role_policy(RoleName=name, PolicyName="p", PolicyDocument=json.dumps(ALLOW_ECS_READ))
    assert iam.get_role_policy(RoleName=name, PolicyName="p")["PolicyDocument"] == ALLOW_ECS_READ
    with pytest.raises(iam.exceptions.DeleteConflictException):
        iam.delete_role(RoleName=name)
    iam.delete_role_policy(RoleName=name, PolicyName="p")
    iam.delete_role(RoleName=name)
    with pytest.raises(iam.exceptions.NoSuchEntityException):
        iam.get_role(RoleName=name)


def test_aws_managed_policies_are_listed_and_attachable_up_to_ten(iam):
    aws = iam.list_policies(Scope="AWS", MaxItems=1000)["Policies"]
    arns = {p["Arn"] for p in aws}
    exec_arn = "arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy"
    assert exec_arn in arns and "arn:aws:iam::aws:policy/AdministratorAccess" in arns
    version = iam.get_policy(PolicyArn=exec_arn)["Policy"]["DefaultVersionId"]
    doc = iam.get_policy_version(PolicyArn=exec_arn, VersionId=version)["PolicyVersion"]["Document"]
    assert "ecr:GetAuthorizationToken" in json.dumps(doc)
    name = unique("attach")
    iam.create_role(RoleName=name, AssumeRolePolicyDocument=trust({"Service": "ecs-tasks.amazonaws.com"}))
    iam.attach_role_policy(RoleName=name, PolicyArn=exec_arn)
    attached = iam.list_attached_role_policies(RoleName=name)["AttachedPolicies"]
    assert attached == [{"PolicyName": "AmazonECSTaskExecutionRolePolicy", "PolicyArn": exec_arn}]
    assert iam.get_policy(PolicyArn=exec_arn)["Policy"]["AttachmentCount"] >= 1
    locals_ = []
    for i in range(10):
        arn = iam.create_policy(PolicyName=unique(f"p{i}"), PolicyDocument=json.dumps(ALLOW_ECS_READ))["Policy"]["Arn"]
        locals_.append(arn)
    for arn in locals_[:9]:
        iam.attach_role_policy(RoleName=name, PolicyArn=arn)
    with pytest.raises(iam.exceptions.LimitExceededException) as info:
        iam.attach_role_policy(RoleName=name, PolicyArn=locals_[9])
    assert "PoliciesPerRole: 10" in info.value.response["Error"]["Message"]
    with pytest.raises(iam.exceptions.NoSuchEntityException):
        iam.attach_role_policy(RoleName=name, PolicyArn=f"arn:aws:iam::{ACCOUNT_ID}:policy/nope")
    with pytest.raises(iam.exceptions.DeleteConflictException):
        iam.delete_role(RoleName=name)
    for arn in [exec_arn, *locals_[:9]]:
        iam.detach_role_policy(RoleName=name, PolicyArn=arn)
    iam.delete_role(RoleName=name)


def test_customer_policies_keep_at_most_five_versions(iam):
    arn = iam.create_policy(PolicyName=unique("ver"), Path="/app/", PolicyDocument=json.dumps(ALLOW_ECS_READ))["Policy"]["Arn"]
    assert "/app/" in arn
    for _ in range(4):
        v = iam.create_policy_version(PolicyArn=arn, PolicyDocument=json.dumps(ALLOW_ECS_READ), SetAsDefault=True)
    assert v["PolicyVersion"]["VersionId"] == "v5"
    assert iam.get_policy(PolicyArn=arn)["Policy"]["DefaultVersionId"] == "v5"
    with pytest.raises(iam.exceptions.LimitExceededException):
        iam.create_policy_version(PolicyArn=arn, PolicyDocument=json.dumps(ALLOW_ECS_READ))
    local = [p["Arn"] for p in iam.list_policies(Scope="Local", MaxItems=1000)["Policies"]]
    assert arn in local


def test_instance_profiles_hold_one_role_which_then_cannot_be_deleted(iam):
    role = unique("ec2role")
    iam.create_role(RoleName=role, AssumeRolePolicyDocument=trust({"Service": "ec2.amazonaws.com"}))
    profile = unique("profile")
    created = iam.create_instance_profile(InstanceProfileName=profile)["InstanceProfile"]
    assert created["InstanceProfileId"].startswith("AIPA")
    assert created["Arn"] == f"arn:aws:iam::{ACCOUNT_ID}:instance-profile/{profile}"
    iam.add_role_to_instance_profile(InstanceProfileName=profile, RoleName=role)
    got = iam.get_instance_profile(InstanceProfileName=profile)["InstanceProfile"]
    assert [r["RoleName"] for r in got["Roles"]] == [role]
    with pytest.raises(iam.exceptions.DeleteConflictException):
        iam.delete_role(RoleName=role)


def test_the_ecs_service_linked_role(iam):
    try:
        role = iam.create_service_linked_role(AWSServiceName="ecs.amazonaws.com")["Role"]
        assert role["RoleName"] == "AWSServiceRoleForECS"
        assert role["Path"] == "/aws-service-role/ecs.amazonaws.com/"
    except botocore.exceptions.ClientError as e:
        assert e.response["Error"]["Code"] == "InvalidInput"
    assert iam.get_role(RoleName="AWSServiceRoleForECS")["Role"]["Arn"].endswith(
        ":role/aws-service-role/ecs.amazonaws.com/AWSServiceRoleForECS"
    )


def test_invalid_names_are_validation_errors(iam):
    # botocore checks lengths, not patterns: the pattern is the server's to refuse.
    with pytest.raises(botocore.exceptions.ClientError) as info:
        iam.create_user(UserName="has space")
    assert code(info) == "ValidationError"
    assert "[\\w+=,.@-]+" in info.value.response["Error"]["Message"]


def test_operations_outside_the_served_set_are_not_implemented(iam):
    with pytest.raises(botocore.exceptions.ClientError) as info:
        iam.list_groups()
    assert code(info) == "InvalidAction"


def test_the_aws_cli_creates_a_user_and_lists_attached_policies(aws):
    name = unique("cli")
    out = aws.run("iam", "create-user", "--user-name", name)
    assert out["User"]["UserName"] == name
    aws.run("iam", "attach-user-policy", "--user-name", name, "--policy-arn", "arn:aws:iam::aws:policy/ReadOnlyAccess")
    out = aws.run("iam", "list-attached-user-policies", "--user-name", name)
    assert out["AttachedPolicies"][0]["PolicyName"] == "ReadOnlyAccess"
