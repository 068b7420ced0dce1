#include "problem.h"

const char *ls_status_title(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 204:
        return "No Content";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 402:
        return "Payment Required";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 409:
        return "Conflict";
    case 413:
        return "Content Too Large";
    case 414:
        return "URI Too Long";
    case 417:
        return "Expectation Failed";
    case 422:
        return "Unprocessable Content";
    case 429:
        return "Too Many Requests";
    case 500:
        return "Internal Server Error";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    }
    return "Error";
}

json_object *ls_problem_new(int status, const char *detail)
{
    json_object *p = json_object_new_object();
    json_object_object_add(p, "type", json_object_new_string("about:blank"));
    json_object_object_add(p, "title", json_object_new_string(ls_status_title(status)));
    json_object_object_add(p, "status", json_object_new_int(status));
    if (detail != NULL)
        json_object_object_add(p, "detail", json_object_new_string(detail));
    return p;
}
