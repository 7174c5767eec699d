from __future__ import annotations

from project.validation import first_error


def test_it_names_the_path_of_the_first_field_in_error() -> None:
    errors = {"messages": [{}, {"role": ["not a valid choice"]}], "model": ["required"]}
    assert first_error(errors) == ("messages.1.role", "not a valid choice")


def test_an_error_about_the_whole_body_has_no_path() -> None:
    assert first_error({"non_field_errors": ["bad body"]}) == (None, "bad body")


def test_a_nested_object_adds_its_field_names() -> None:
    errors = {"response_format": {"json_schema": {"schema": ["not a valid JSON schema"]}}}
    assert first_error(errors) == ("response_format.json_schema.schema", "not a valid JSON schema")
