//! Constraints and strategies from their AWS strings (`type`, `expression`/`field`), with
//! the validation ECS applies and AWS-style messages.

use model::ecs::shapes::{PlacementConstraint, PlacementStrategy};

use crate::error::PlacementError;
use crate::expression::parse_expression;
use crate::types::{Constraint, Field, SpreadField, Strategy};

/// Parses a placement constraint: `distinctInstance` (no expression) or `memberOf` (with a
/// cluster query expression).
pub fn parse_constraint(
    type_: &str,
    expression: Option<&str>,
) -> Result<Constraint, PlacementError> {
    match type_ {
        "distinctInstance" => match expression {
            // The SDKs send no expression, but an empty one carries no meaning either.
            None | Some("") => Ok(Constraint::DistinctInstance),
            Some(_) => Err(PlacementError::UnexpectedExpression),
        },
        "memberOf" => match expression {
            None | Some("") => Err(PlacementError::MissingExpression),
            Some(e) => parse_expression(e).map(Constraint::MemberOf),
        },
        other => Err(PlacementError::UnknownConstraintType(other.to_owned())),
    }
}

/// Parses a placement strategy: `binpack` (field `cpu` or `memory`), `spread` (field
/// `instanceId`, `host` or `attribute:<name>`) or `random` (no field). Field keywords are
/// matched case-insensitively, as ECS does for `CPU`/`MEMORY`; attribute names are kept
/// as written.
pub fn parse_strategy(type_: &str, field: Option<&str>) -> Result<Strategy, PlacementError> {
    let field = field.filter(|f| !f.is_empty());
    match type_ {
        "binpack" => {
            let f = field.ok_or(PlacementError::MissingField("binpack"))?;
            match f.to_ascii_lowercase().as_str() {
                "cpu" => Ok(Strategy::Binpack(Field::Cpu)),
                "memory" => Ok(Strategy::Binpack(Field::Memory)),
                _ => Err(PlacementError::InvalidBinpackField(f.to_owned())),
            }
        }
        "spread" => {
            let f = field.ok_or(PlacementError::MissingField("spread"))?;
            if f.eq_ignore_ascii_case("instanceId") || f.eq_ignore_ascii_case("host") {
                return Ok(Strategy::Spread(SpreadField::InstanceId));
            }
            match f.strip_prefix("attribute:") {
                Some(name) if model::ecs::names::check_attribute_name(name).is_ok() => {
                    Ok(Strategy::Spread(SpreadField::Attribute(name.to_owned())))
                }
                _ => Err(PlacementError::InvalidSpreadField(f.to_owned())),
            }
        }
        "random" => match field {
            None => Ok(Strategy::Random),
            Some(_) => Err(PlacementError::UnexpectedField),
        },
        other => Err(PlacementError::UnknownStrategyType(other.to_owned())),
    }
}

/// [`parse_constraint`] for the wire shape. A missing `type` is reported as an unknown
/// (empty) type.
pub fn parse_constraint_shape(c: &PlacementConstraint) -> Result<Constraint, PlacementError> {
    parse_constraint(
        c.type_.map(|t| t.as_str()).unwrap_or(""),
        c.expression.as_deref(),
    )
}

/// [`parse_strategy`] for the wire shape.
pub fn parse_strategy_shape(s: &PlacementStrategy) -> Result<Strategy, PlacementError> {
    parse_strategy(
        s.type_.map(|t| t.as_str()).unwrap_or(""),
        s.field.as_deref(),
    )
}
