//! Constraints and strategies from AWS strings and wire shapes.

#![allow(clippy::unwrap_used)] // tests may unwrap

use model::ecs::shapes::{
    PlacementConstraint, PlacementConstraintType, PlacementStrategy, PlacementStrategyType,
};
use placement::{
    parse_constraint, parse_constraint_shape, parse_strategy, parse_strategy_shape, Constraint,
    Field, PlacementError, SpreadField, Strategy,
};

#[test]
fn distinct_instance_takes_no_expression() {
    assert_eq!(
        parse_constraint("distinctInstance", None),
        Ok(Constraint::DistinctInstance)
    );
    assert_eq!(
        parse_constraint("distinctInstance", Some("attribute:a == b")),
        Err(PlacementError::UnexpectedExpression)
    );
}

#[test]
fn member_of_needs_a_valid_expression() {
    assert_eq!(
        parse_constraint("memberOf", None),
        Err(PlacementError::MissingExpression)
    );
    assert!(matches!(
        parse_constraint("memberOf", Some("attribute:a == b")),
        Ok(Constraint::MemberOf(_))
    ));
    let err = parse_constraint("memberOf", Some("attribute:stack prod")).unwrap_err();
    assert_eq!(
        err.to_string(),
        "Invalid expression at character 17: expected an operator after 'attribute:stack'"
    );
}

#[test]
fn unknown_constraint_type_is_rejected() {
    assert_eq!(
        parse_constraint("sameInstance", None),
        Err(PlacementError::UnknownConstraintType("sameInstance".into()))
    );
}

#[test]
fn binpack_field_must_be_cpu_or_memory() {
    assert_eq!(
        parse_strategy("binpack", Some("memory")),
        Ok(Strategy::Binpack(Field::Memory))
    );
    assert_eq!(
        parse_strategy("binpack", Some("CPU")),
        Ok(Strategy::Binpack(Field::Cpu))
    );
    let err = parse_strategy("binpack", Some("disk")).unwrap_err();
    assert_eq!(
        err.to_string(),
        "Invalid field 'disk' for the binpack placement strategy. The field must be cpu or memory."
    );
    assert_eq!(
        parse_strategy("binpack", None),
        Err(PlacementError::MissingField("binpack"))
    );
}

#[test]
fn spread_field_is_instance_id_host_or_an_attribute() {
    assert_eq!(
        parse_strategy("spread", Some("instanceId")),
        Ok(Strategy::Spread(SpreadField::InstanceId))
    );
    assert_eq!(
        parse_strategy("spread", Some("host")),
        Ok(Strategy::Spread(SpreadField::InstanceId))
    );
    assert_eq!(
        parse_strategy("spread", Some("attribute:ecs.availability-zone")),
        Ok(Strategy::Spread(SpreadField::Attribute(
            "ecs.availability-zone".into()
        )))
    );
    assert!(matches!(
        parse_strategy("spread", Some("zone")),
        Err(PlacementError::InvalidSpreadField(_))
    ));
    assert!(matches!(
        parse_strategy("spread", Some("attribute:")),
        Err(PlacementError::InvalidSpreadField(_))
    ));
}

#[test]
fn random_takes_no_field() {
    assert_eq!(parse_strategy("random", None), Ok(Strategy::Random));
    assert_eq!(
        parse_strategy("random", Some("cpu")),
        Err(PlacementError::UnexpectedField)
    );
    assert!(matches!(
        parse_strategy("roundRobin", None),
        Err(PlacementError::UnknownStrategyType(_))
    ));
}

#[test]
fn wire_shapes_parse_like_their_strings() {
    let c = PlacementConstraint {
        type_: Some(PlacementConstraintType::MemberOf),
        expression: Some("attribute:a == b".into()),
    };
    assert_eq!(
        parse_constraint_shape(&c),
        parse_constraint("memberOf", Some("attribute:a == b"))
    );
    let s = PlacementStrategy {
        type_: Some(PlacementStrategyType::Binpack),
        field: Some("memory".into()),
    };
    assert_eq!(
        parse_strategy_shape(&s),
        Ok(Strategy::Binpack(Field::Memory))
    );
}
