"""Forms for signing in and managing accounts."""

from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    PasswordField,
    SelectField,
    StringField,
    SubmitField,
    TextAreaField,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, EqualTo, Length

from .models import ROLE_LABELS
from .service import MIN_PASSWORD_LENGTH

ROLE_CHOICES = [SelectChoice(role.value, label) for role, label in ROLE_LABELS.items()]


class LoginForm(FlaskForm):
    username = StringField("Username", validators=[DataRequired(), Length(max=200)],
                           render_kw={"autocomplete": "username", "autocapitalize": "none"})
    password = PasswordField("Password", validators=[DataRequired(), Length(max=1000)],
                             render_kw={"autocomplete": "current-password"})
    submit = SubmitField("Sign in")


class NewPasswordMixin:
    new_password = PasswordField(
        "New password", validators=[DataRequired(), Length(min=MIN_PASSWORD_LENGTH)],
        description=f"At least {MIN_PASSWORD_LENGTH} characters. A short sentence is easy to "
                    "remember and hard to guess; common passwords, runs of keys and your own "
                    "name are refused.",
        render_kw={"autocomplete": "new-password"})
    confirm = PasswordField("Type the new password again",
                            validators=[DataRequired(), EqualTo("new_password",
                                                                message="The passwords differ.")],
                            render_kw={"autocomplete": "new-password"})


class ChangePasswordForm(NewPasswordMixin, FlaskForm):
    current_password = PasswordField("Current password", validators=[DataRequired()],
                                     render_kw={"autocomplete": "current-password"})
    submit = SubmitField("Change password")


class SiteFieldsMixin:
    site = SelectField("Site", coerce=int,
                       description="Reporters see the stories gathered at their own site.")
    all_sites = BooleanField("Can see stories from every site (lead reporter)")


class UserForm(SiteFieldsMixin, FlaskForm):
    display_name = StringField("Name shown in StoryHub",
                               validators=[DataRequired(), Length(max=120)])
    role = SelectField("Role", choices=ROLE_CHOICES)
    enabled = BooleanField("Account enabled", default=True)
    submit = SubmitField("Save")


class NewUserForm(NewPasswordMixin, SiteFieldsMixin, FlaskForm):
    username = StringField("Username", validators=[DataRequired(), Length(min=2, max=64)],
                           description="Lower-case letters, digits, dots or dashes. "
                                       "Not an email address.",
                           render_kw={"autocapitalize": "none", "autocomplete": "off"})
    display_name = StringField("Name shown in StoryHub",
                               validators=[DataRequired(), Length(max=120)])
    role = SelectField("Role", choices=ROLE_CHOICES)
    must_change = BooleanField("Ask them to choose their own password when they first sign in",
                               default=True)
    submit = SubmitField("Create account")


class SiteForm(FlaskForm):
    name = StringField("Site name", validators=[DataRequired(), Length(max=120)],
                       description="e.g. the probation office, hostel or project.")
    submit = SubmitField("Add site")


class SiteTermsForm(FlaskForm):
    local_terms = TextAreaField(
        "Local names to redact", validators=[Length(max=5000)],
        description="Offices, estates, hostels, streets and people known locally: one per "
                    "line. They are suggested for redaction in this site's stories.")
    submit = SubmitField("Save local names")


class ResetPasswordForm(NewPasswordMixin, FlaskForm):
    submit = SubmitField("Set temporary password")


class SetupForm(NewPasswordMixin, FlaskForm):
    username = StringField("Username", validators=[DataRequired(), Length(min=2, max=64)],
                           render_kw={"autocapitalize": "none", "autocomplete": "username"})
    display_name = StringField("Your name", validators=[DataRequired(), Length(max=120)])
    submit = SubmitField("Create the first admin")
