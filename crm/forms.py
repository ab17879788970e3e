"""Forms for the public client pages."""

from django import forms

from .models import Client


class ClientForm(forms.ModelForm):
    class Meta:
        model = Client
        fields = ("name", "email", "phone", "avatar")
        widgets = {"avatar": forms.ClearableFileInput(attrs={"accept": "image/*"})}
