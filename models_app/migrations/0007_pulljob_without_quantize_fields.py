from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('models_app', '0006_quantize_jobs'),
    ]

    operations = [
        migrations.RemoveField(
            model_name='pulljob',
            name='kind',
        ),
        migrations.RemoveField(
            model_name='pulljob',
            name='quantize',
        ),
        migrations.RemoveField(
            model_name='pulljob',
            name='record_fields',
        ),
        migrations.RemoveField(
            model_name='pulljob',
            name='source',
        ),
        migrations.RemoveField(
            model_name='pulljob',
            name='source_quantization',
        ),
    ]
