"""Library forms: the reader's filters and search, and the curator's panel."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import (
    DateField,
    RadioField,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import Length, Optional
from wtforms.widgets import CheckboxInput, ListWidget

from ..stories.models import StorytellerRole, StoryType
from .service import MAX_HIGHLIGHTS, SUMMARY_MAX


def _int_or_none(value):
    return int(value) if value not in (None, "", "None") else None


class FindForm(FlaskForm):
    """Search and filters (a GET form: bookmarkable, nothing changes, so no CSRF token)."""

    class Meta:
        csrf = False

    q = StringField("Search the stories", validators=[Optional(), Length(max=300)],
                    render_kw={"type": "search", "autocomplete": "off",
                               "placeholder": "e.g. leaving prison with nowhere to live"})
    how = RadioField("Search by", choices=[SelectChoice("meaning", "Meaning (close in sense)"),
                                           SelectChoice("words", "Exact words")],
                     default="meaning",
                     validators=[Optional()])
    # Exact words: stories with all the words (and "quoted phrases"), or, asked for from the
    # results, any of them. Not a field on the form: a new search asks for all again.
    match = RadioField("Stories with", choices=[SelectChoice("all", "All the words"),
                                                SelectChoice("any", "Any of the words")],
                       default="all", validators=[Optional()])
    theme = SelectField("Theme", coerce=_int_or_none, validators=[Optional()])
    role = SelectField("Told by", validators=[Optional()], choices=[
        SelectChoice("", "Anyone"), *(SelectChoice(r.value, r.label) for r in StorytellerRole)])
    type = SelectField("Type of story", validators=[Optional()], choices=[
        SelectChoice("", "Any type"),
        *(SelectChoice(t.value, t.value.capitalize()) for t in StoryType)])
    site = SelectField("Site", coerce=_int_or_none, validators=[Optional()])
    tag = SelectField("Tag", validators=[Optional()])
    recorded_from = DateField("Recorded from", validators=[Optional()])
    recorded_to = DateField("Recorded until", validators=[Optional()])


class CurationForm(FlaskForm):
    summary = TextAreaField(
        "Summary for staff", validators=[Length(max=SUMMARY_MAX)],
        description="Two or three sentences on what the story is about, with no names or "
                    "details that could identify anyone.")
    highlights = SelectMultipleField(
        f"Highlight passages (up to {MAX_HIGHLIGHTS})", coerce=int, validators=[Optional()],
        widget=ListWidget(prefix_label=False), option_widget=CheckboxInput())
