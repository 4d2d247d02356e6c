from __future__ import annotations

from django import forms

from .models import Post


class PostForm(forms.ModelForm):
    class Meta:
        model = Post
        fields = ["caption", "photo"]  # photo renders as <s3drop-uploader>
