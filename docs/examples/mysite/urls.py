from django.http import HttpResponse
from django.urls import path


def index(request):
    return HttpResponse("mysite is up\n")


urlpatterns = [path("", index)]
