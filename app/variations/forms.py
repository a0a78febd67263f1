"""Forms of the Wildcards page: a list typed in, and a .txt file imported."""

from __future__ import annotations

from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from wtforms import BooleanField, StringField, TextAreaField


class WildcardForm(FlaskForm):
    """A list's name, its values one a line, and (for admins) whether everyone may use it."""

    name = StringField("Name", description="Written __name__ in a prompt: letters, digits, - and _.")
    values = TextAreaField("Values, one a line")
    shared = BooleanField("Share with everyone")


class ImportForm(FlaskForm):
    """A .txt file of values, one a line; the list is named after the file unless a name is given."""

    file = FileField("A .txt file")
    name = StringField("Name (optional)", description="Empty: the file's name without .txt.")
    shared = BooleanField("Share with everyone")
