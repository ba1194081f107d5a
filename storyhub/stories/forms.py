"""The story form: the story, the storyteller, their consent, and the recording."""

from __future__ import annotations

from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from wtforms import (
    BooleanField,
    DateField,
    RadioField,
    SelectField,
    StringField,
    SubmitField,
    TextAreaField,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length, Optional, Regexp

from .. import dates
from ..media.audio import ACCEPTED_FORMATS_TEXT
from .consent import SCOPE_LABELS, Scope
from .models import StorytellerRole, StoryType

ACCEPT = ("audio/*,video/webm,video/mp4,.wav,.mp3,.m4a,.aac,.ogg,.opus,.oga,.flac,.webm")
LANGUAGES = [SelectChoice("en", "English"), SelectChoice("cy", "Welsh"),
             SelectChoice("pl", "Polish"), SelectChoice("ro", "Romanian"),
             SelectChoice("pa", "Punjabi"), SelectChoice("ur", "Urdu"),
             SelectChoice("other", "Another language")]
CHANGE_CHANNELS = [("in_person", "In person"), ("phone", "On the phone"),
                   ("signed_form", "On a signed form"), ("other", "Another way")]


class StoryForm(FlaskForm):
    # Each message names its field: the error summary at the top of a long phone form lists
    # them, away from the boxes they are about.
    title = StringField("Story title", validators=[
        DataRequired(message="Enter a title for the story."),
        Length(max=200, message="Keep the title to 200 characters or fewer.")],
                        description="A few words to find it again, e.g. ‘First week out of "
                                    "prison’. No names.")
    story_type = RadioField("Type of story",
                            choices=[SelectChoice(t.value, t.label) for t in StoryType],
                            default=StoryType.SNAPSHOT.value)
    prompt = TextAreaField("The question you asked", validators=[Optional(), Length(max=2000)],
                           description="e.g. ‘What has helped you most since you started "
                                       "probation?’")
    storyteller_role = SelectField("The storyteller is a…",
                                   choices=[SelectChoice(r.value, r.label)
                                            for r in StorytellerRole])
    storyteller_code = StringField(
        "Storyteller code (optional)",
        validators=[Optional(), Regexp(r"^[A-Za-z0-9-]{3,32}$",
                                       message="Use letters, digits and dashes only.")],
        description="Leave blank for a new storyteller: StoryHub makes a code. Use an existing "
                    "code if this person has told a story before.",
        render_kw={"autocapitalize": "characters", "autocomplete": "off"})
    real_name = StringField("Storyteller's real name (optional)",
                            validators=[Optional(), Length(max=200)],
                            description="Only if they agreed to it being stored. It is kept "
                                        "apart from the story and never shown in packs or "
                                        "the library.",
                            render_kw={"autocomplete": "off"})
    site = SelectField("Site", coerce=int, validators=[Optional()])
    language = SelectField("Language spoken", choices=LANGUAGES, default="en")
    recorded_on = DateField("Date recorded", default=dates.today, validators=[
        DataRequired(message="Enter the date the story was recorded.")])
    tags = StringField("Tags (optional)", validators=[Optional(), Length(max=500)],
                       description="Separate with commas, e.g. housing, first appointment")

    consent_transcribe_analyse = BooleanField(SCOPE_LABELS[Scope.TRANSCRIBE_ANALYSE])
    consent_quote_in_packs = BooleanField(SCOPE_LABELS[Scope.QUOTE_IN_PACKS])
    consent_play_in_workshops = BooleanField(SCOPE_LABELS[Scope.PLAY_IN_WORKSHOPS])
    consent_staff_library = BooleanField(SCOPE_LABELS[Scope.STAFF_LIBRARY])
    consent_publish_external = BooleanField(SCOPE_LABELS[Scope.PUBLISH_EXTERNAL])
    store_real_name = BooleanField("Keep their real name on record (kept apart from the story)")
    consent_method = RadioField(
        "How consent was given",
        choices=[SelectChoice("spoken", "Spoken on the recording"),
                 SelectChoice("signed_form", "Signed consent form")],
        default="spoken")
    spoken_at = StringField("Where on the recording (minutes:seconds)",
                            validators=[Optional(),
                                        Regexp(r"^\d{1,3}(:\d{1,2}){0,2}$",
                                               message="Write it as minutes:seconds, e.g. 0:05")],
                            default="0:00", render_kw={"inputmode": "numeric"})
    consent_form = FileField("Signed consent form (PDF, JPEG or PNG)",
                             render_kw={"accept": "application/pdf,image/jpeg,image/png"})
    witnessed_by = StringField("Witnessed by (optional)", validators=[Optional(), Length(max=200)])
    consent_given_on = DateField("Date consent was given", default=dates.today,
                                 validators=[DataRequired(
                                     message="Enter the date consent was given.")])
    consent_review_on = DateField("Review consent by (optional)", validators=[Optional()],
                                  description="When to check again that they are still happy.")

    audio = FileField("Recording", description=f"{ACCEPTED_FORMATS_TEXT}.",
                      render_kw={"accept": ACCEPT})
    submit = SubmitField("Save story")

    def scopes(self) -> set[Scope]:
        return {scope for scope in Scope if self[f"consent_{scope.value}"].data}

    def spoken_at_seconds(self) -> float | None:
        if self.consent_method.data != "spoken" or not self.spoken_at.data:
            return None
        seconds = 0.0
        for part in self.spoken_at.data.split(":"):
            seconds = seconds * 60 + float(part)
        return seconds


class ConsentChangeForm(FlaskForm):
    """A change the storyteller asked for: narrow or widen what they agreed to, or renew it."""

    consent_transcribe_analyse = BooleanField(SCOPE_LABELS[Scope.TRANSCRIBE_ANALYSE])
    consent_quote_in_packs = BooleanField(SCOPE_LABELS[Scope.QUOTE_IN_PACKS])
    consent_play_in_workshops = BooleanField(SCOPE_LABELS[Scope.PLAY_IN_WORKSHOPS])
    consent_staff_library = BooleanField(SCOPE_LABELS[Scope.STAFF_LIBRARY])
    consent_publish_external = BooleanField(SCOPE_LABELS[Scope.PUBLISH_EXTERNAL])
    how = RadioField("How the storyteller told you",
                     choices=[SelectChoice(value, label) for value, label in CHANGE_CHANNELS],
                     default="in_person", validators=[DataRequired()])
    confirmed_on = DateField("Date they told you", default=dates.today,
                             validators=[DataRequired()])
    review_on = DateField("Review consent by (optional)", validators=[Optional()],
                          description="When to check again that they are still happy.")
    submit = SubmitField("Save the change")

    def scopes(self) -> set[Scope]:
        return {scope for scope in Scope if self[f"consent_{scope.value}"].data}
