from __future__ import annotations

from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import UserCreationForm
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from .forms import PostForm
from .models import Post


@login_required
def posts(request: HttpRequest) -> HttpResponse:
    form = PostForm(request.POST or None, instance=Post(author=request.user))
    if request.method == "POST" and form.is_valid():
        form.save()
        return redirect("posts")
    mine = Post.objects.filter(author=request.user)
    return render(request, "journal/posts.html", {"form": form, "posts": mine})


def signup(request: HttpRequest) -> HttpResponse:
    form = UserCreationForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        login(request, form.save())
        return redirect("posts")
    return render(request, "journal/signup.html", {"form": form})
