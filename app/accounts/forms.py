"""Forms of the sign-in, password, admin and webhook pages."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    EmailField,
    FloatField,
    PasswordField,
    SelectField,
    SelectMultipleField,
    StringField,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, EqualTo, NumberRange, Optional, ValidationError
from wtforms.widgets import CheckboxInput, ListWidget

from app.accounts.passwords import password_problem
from app.accounts.users import email_problem, normalise_email
from app.webhooks.bodies import BATCH_COMPLETED, EVENTS


def _email_ok(_form: FlaskForm, field: EmailField) -> None:
    problem = email_problem(normalise_email(field.data or ""))
    if problem:
        raise ValidationError(problem)


def _password_ok(_form: FlaskForm, field: PasswordField) -> None:
    problem = password_problem(field.data or "")
    if problem:
        raise ValidationError(problem)


class LoginForm(FlaskForm):
    """Email and password."""

    email = EmailField("Email", validators=[DataRequired("Enter your email address.")])
    password = PasswordField("Password", validators=[DataRequired("Enter your password.")])


class SetPasswordForm(FlaskForm):
    """A new password, typed twice."""

    password = PasswordField("New password", validators=[DataRequired("Choose a password."), _password_ok])
    confirm = PasswordField("New password again", validators=[
        DataRequired("Type the password again."), EqualTo("password", "The two passwords differ.")])


class ChangePasswordForm(SetPasswordForm):
    """The current password, a new one twice, and whether the API tokens go too (ticked unless unticked)."""

    current = PasswordField("Current password", validators=[DataRequired("Enter your current password.")])
    revoke_tokens = BooleanField("Also revoke my API tokens", default=True)


class DeleteAccountForm(FlaskForm):
    """Your password, to delete your account."""

    password = PasswordField("Your password", validators=[DataRequired("Enter your password to delete your account.")])


CREDITS_MESSAGE = "Use a number of credits of at least 0, or leave it empty for no cap."


class CreateUserForm(FlaskForm):
    """What an admin fills in to invite someone."""

    email = EmailField("Email", validators=[DataRequired("Enter an email address."), _email_ok])
    monthly_credits = FloatField("Monthly credits", validators=[Optional(), NumberRange(0, 10**9, CREDITS_MESSAGE)])
    is_admin = BooleanField("Admin")


class CreditsForm(FlaskForm):
    """A user's monthly allowance."""

    monthly_credits = FloatField("Monthly credits", validators=[Optional(), NumberRange(0, 10**9, CREDITS_MESSAGE)])


class WebhookForm(FlaskForm):
    """A new webhook endpoint: where, which events, and in what form."""

    url = StringField("Endpoint URL", validators=[DataRequired("Enter the URL to send to.")])
    events = SelectMultipleField("Events", choices=[SelectChoice(event) for event in EVENTS],
                                 default=[BATCH_COMPLETED], widget=ListWidget(prefix_label=False),
                                 option_widget=CheckboxInput(),
                                 validators=[DataRequired("Pick at least one event.")])
    body_format = SelectField("Body", choices=[SelectChoice("standard", "JSON (Standard Webhooks)"),
                                               SelectChoice("slack", "Slack"), SelectChoice("discord", "Discord")],
                              default="standard")
