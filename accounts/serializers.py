from __future__ import annotations

from django.contrib.auth.models import User
from rest_framework import serializers

from accounts.models import ApiKey, AuditEntry, Team


class ApiKeySerializer(serializers.ModelSerializer):
    """A key as the staff API shows it: never the secret, which exists only at creation."""

    user: serializers.SlugRelatedField[User] = serializers.SlugRelatedField(
        slug_field="username", read_only=True
    )
    team: serializers.SlugRelatedField[Team] = serializers.SlugRelatedField(
        slug_field="name", read_only=True
    )
    state = serializers.CharField(read_only=True)

    class Meta:
        model = ApiKey
        fields = [
            "id",
            "name",
            "prefix",
            "user",
            "team",
            "allowed_models",
            "requests_per_minute",
            "tokens_per_minute",
            "tokens_per_day",
            "expires_at",
            "revoked",
            "revoked_at",
            "state",
            "created_at",
        ]
        read_only_fields = fields


class ApiKeyCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    user = serializers.SlugRelatedField(
        slug_field="username", queryset=User.objects.all(), required=False
    )
    team = serializers.SlugRelatedField(
        slug_field="name", queryset=Team.objects.all(), required=False, allow_null=True
    )
    allowed_models = serializers.ListField(
        child=serializers.CharField(max_length=200), required=False, allow_null=True
    )
    requests_per_minute = serializers.IntegerField(min_value=1, required=False, allow_null=True)
    tokens_per_minute = serializers.IntegerField(min_value=1, required=False, allow_null=True)
    tokens_per_day = serializers.IntegerField(min_value=1, required=False, allow_null=True)
    expires_at = serializers.DateTimeField(required=False, allow_null=True)


class CreatedKeySerializer(ApiKeySerializer):
    secret = serializers.CharField(read_only=True, help_text="shown this once only")

    class Meta(ApiKeySerializer.Meta):
        fields = [*ApiKeySerializer.Meta.fields, "secret"]
        read_only_fields = fields


class UsageQuerySerializer(serializers.Serializer):
    group_by = serializers.ChoiceField(choices=["key", "team", "model", "day"], default="day")
    since = serializers.DateTimeField(required=False)
    until = serializers.DateTimeField(required=False)
    key = serializers.CharField(required=False, help_text="a key's name")
    team = serializers.CharField(required=False, help_text="a team's name")
    model = serializers.CharField(required=False)


class UsageRowSerializer(serializers.Serializer):
    group = serializers.CharField(allow_null=True)
    requests = serializers.IntegerField()
    prompt_tokens = serializers.IntegerField()
    completion_tokens = serializers.IntegerField()
    total_tokens = serializers.IntegerField()


class AuditEntrySerializer(serializers.ModelSerializer):
    actor = serializers.CharField(source="actor_name", read_only=True)

    class Meta:
        model = AuditEntry
        fields = ["id", "actor", "action", "target", "details", "created_at"]
        read_only_fields = fields
