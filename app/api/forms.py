"""The form that makes a personal access token on /account/tokens."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import IntegerField, StringField
from wtforms.validators import NumberRange, Optional, ValidationError

from app.accounts.tokens import MAX_EXPIRY_DAYS, name_problem
from app.prompts.forms import PlainNumberMixin

DAYS_MESSAGE = f"Use a whole number of days from 1 to {MAX_EXPIRY_DAYS:,}, or leave it empty for no expiry."


def _name_ok(_form: FlaskForm, field: StringField) -> None:
    problem = name_problem((field.data or "").strip())
    if problem:
        raise ValidationError(problem)


class DaysField(PlainNumberMixin, IntegerField):
    """A number of days, explained plainly when it is not one."""

    invalid_message = DAYS_MESSAGE


class TokenForm(FlaskForm):
    """A name to recognise the token by, and an optional lifetime."""

    name = StringField("Name", validators=[_name_ok])
    expires_days = DaysField("Expires after (days)", validators=[
        Optional(), NumberRange(1, MAX_EXPIRY_DAYS, message=DAYS_MESSAGE)])
