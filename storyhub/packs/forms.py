"""Forms for a workshop's details and the actions it agreed."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import DateField, SelectField, StringField, SubmitField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length, Optional

from ..security import db_id
from .models import ActionStatus, Audience


class WorkshopForm(FlaskForm):
    title = StringField("Workshop title", validators=[DataRequired(), Length(max=200)],
                        description="e.g. ‘Conversations for Change: what helps on licence’")
    held_on = DateField("Date of the workshop", validators=[Optional()])
    place = StringField("Place", validators=[Optional(), Length(max=200)],
                        description="The venue as it should appear on the pack.")
    audience = SelectField("Who is it for?",
                           choices=[SelectChoice(a.value, a.label) for a in Audience],
                           default=Audience.MIXED.value)
    facilitators = StringField("Facilitators", validators=[Optional(), Length(max=300)],
                               description="First names or roles, as they will be printed.")
    safeguarding_contact = StringField(
        "Who to talk to if a story upsets someone", validators=[Optional(), Length(max=300)],
        description="Printed in the ground rules, e.g. ‘Sam (peer mentor), in the quiet room’.")
    submit = SubmitField("Save")


class ActionForm(FlaskForm):
    workshop_theme_id = SelectField("Theme", validators=[Optional()], coerce=str)
    what = TextAreaField("What was agreed", validators=[DataRequired(), Length(max=2000)])
    who = StringField("Who takes it forward", validators=[Optional(), Length(max=200)])
    due_on = DateField("By when", validators=[Optional()])
    status = SelectField("Status", choices=[SelectChoice(s.value, s.label)
                                            for s in ActionStatus],
                         default=ActionStatus.AGREED.value)
    outcome = TextAreaField("What has been done",
                            validators=[Optional(), Length(max=2000)],
                            description="Printed on the “You said, we did” sheet.")
    submit = SubmitField("Save action")

    def set_themes(self, workshop) -> None:
        self.workshop_theme_id.choices = [SelectChoice("", "Not one theme")] + [
            SelectChoice(str(t.id), t.title) for t in workshop.themes]

    @property
    def theme_id(self) -> int | None:
        return db_id(self.workshop_theme_id.data)
