"""What the widget says, in each language it speaks. Kept on the server so the widget stays small:
the config hands the visitor's language to the widget, merged with the site's own wording."""

from __future__ import annotations

# `{time}` is the call time in the visitor's own time zone; `{n}` their place in the queue, or in
# `calling_step` which manager of `{of}` is being rung.
TEXTS: dict[str, dict[str, str]] = {
    "en": {
        "button": "Call me back",
        "title": "We will call you back",
        "intro_now": "Leave your number and a manager will call you right away.",
        "intro_later": "Nobody can take a call just now. Pick a time that suits you.",
        "intro_message": "Nobody can take a call just now. Leave a message and we will get back to you.",
        "phone": "Your phone number",
        "name": "Your name (optional)",
        "time": "When should we call?",
        "message": "Your message",
        "consent": "I agree to be called back about my request.",
        "submit_now": "Call me now",
        "submit_later": "Call me at this time",
        "submit_message": "Send",
        "close": "Close",
        "again": "Try again",
        "cancel": "Cancel my request",
        "sending": "Sending…",
        "network": "We could not reach the server. Check your connection and try again.",
        "queued": "Waiting for a free manager…",
        "accepted": "Request received. We are calling a manager…",
        "calling_step": "Calling a manager — {n} of {of}",
        "queue_position": "You are number {n} in line.",
        "calling_manager": "Calling a manager…",
        "calling_visitor": "A manager is ready, your phone will ring.",
        "connected": "Connected. Enjoy your call!",
        "completed": "The call has ended. Thank you!",
        "scheduled": "We will call you at {time}.",
        "retry": "We could not reach you. We will try again at {time}.",
        "missed": "Sorry, no manager could answer just now. Your request is saved and we will call you back.",
        "unreachable": "We tried to call you several times but could not get through.",
        "failed": "Sorry, the call could not be placed because of a technical problem.",
        "rejected": "Sorry, we could not accept this request.",
        "cancelled": "This request was cancelled.",
        "received": "Thank you! We got your message and will get back to you.",
    },
    "pl": {
        "button": "Zadzwońcie do mnie",
        "title": "Oddzwonimy do Ciebie",
        "intro_now": "Zostaw swój numer, a konsultant zaraz do Ciebie zadzwoni.",
        "intro_later": "Teraz nikt nie może odebrać. Wybierz dogodny termin.",
        "intro_message": "Teraz nikt nie może odebrać. Zostaw wiadomość, a odezwiemy się do Ciebie.",
        "phone": "Twój numer telefonu",
        "name": "Imię (opcjonalnie)",
        "time": "Kiedy mamy zadzwonić?",
        "message": "Twoja wiadomość",
        "consent": "Zgadzam się na telefon w sprawie mojego zapytania.",
        "submit_now": "Zadzwońcie teraz",
        "submit_later": "Zadzwońcie o tej porze",
        "submit_message": "Wyślij",
        "close": "Zamknij",
        "again": "Spróbuj ponownie",
        "cancel": "Anuluj zgłoszenie",
        "sending": "Wysyłanie…",
        "network": "Nie udało się połączyć z serwerem. Sprawdź połączenie i spróbuj ponownie.",
        "queued": "Czekamy na wolnego konsultanta…",
        "accepted": "Zgłoszenie przyjęte. Dzwonimy do konsultanta…",
        "calling_step": "Dzwonimy do konsultanta — {n} z {of}",
        "queue_position": "Jesteś {n}. w kolejce.",
        "calling_manager": "Dzwonimy do konsultanta…",
        "calling_visitor": "Konsultant jest gotowy, za chwilę zadzwoni Twój telefon.",
        "connected": "Połączono. Miłej rozmowy!",
        "completed": "Rozmowa zakończona. Dziękujemy!",
        "scheduled": "Zadzwonimy do Ciebie: {time}.",
        "retry": "Nie udało się do Ciebie dodzwonić. Spróbujemy ponownie: {time}.",
        "missed": "Przepraszamy, żaden konsultant nie mógł teraz odebrać. Zapisaliśmy zgłoszenie i oddzwonimy.",
        "unreachable": "Kilka razy próbowaliśmy do Ciebie zadzwonić, ale bez skutku.",
        "failed": "Przepraszamy, połączenie nie powiodło się z powodu problemu technicznego.",
        "rejected": "Przepraszamy, nie możemy przyjąć tego zgłoszenia.",
        "cancelled": "To zgłoszenie zostało anulowane.",
        "received": "Dziękujemy! Otrzymaliśmy wiadomość i odezwiemy się do Ciebie.",
    },
    "ru": {
        "button": "Перезвоните мне",
        "title": "Мы вам перезвоним",
        "intro_now": "Оставьте номер, и менеджер сразу вам позвонит.",
        "intro_later": "Сейчас никто не может ответить. Выберите удобное время.",
        "intro_message": "Сейчас никто не может ответить. Оставьте сообщение, и мы с вами свяжемся.",
        "phone": "Ваш номер телефона",
        "name": "Ваше имя (необязательно)",
        "time": "Когда вам позвонить?",
        "message": "Ваше сообщение",
        "consent": "Я согласен(на) на звонок по моему запросу.",
        "submit_now": "Позвоните сейчас",
        "submit_later": "Позвоните в это время",
        "submit_message": "Отправить",
        "close": "Закрыть",
        "again": "Попробовать снова",
        "cancel": "Отменить заявку",
        "sending": "Отправляем…",
        "network": "Не удалось связаться с сервером. Проверьте подключение и попробуйте снова.",
        "queued": "Ждём свободного менеджера…",
        "accepted": "Заявка принята. Звоним менеджеру…",
        "calling_step": "Звоним менеджеру — {n} из {of}",
        "queue_position": "Вы {n}-й в очереди.",
        "calling_manager": "Звоним менеджеру…",
        "calling_visitor": "Менеджер на линии, сейчас зазвонит ваш телефон.",
        "connected": "Соединено. Приятного разговора!",
        "completed": "Разговор завершён. Спасибо!",
        "scheduled": "Мы позвоним вам: {time}.",
        "retry": "Не удалось до вас дозвониться. Попробуем снова: {time}.",
        "missed": "К сожалению, сейчас ни один менеджер не смог ответить. Заявка сохранена, мы перезвоним.",
        "unreachable": "Мы несколько раз пытались вам позвонить, но не дозвонились.",
        "failed": "К сожалению, звонок не удался из-за технической ошибки.",
        "rejected": "К сожалению, мы не можем принять эту заявку.",
        "cancelled": "Заявка отменена.",
        "received": "Спасибо! Мы получили ваше сообщение и свяжемся с вами.",
    },
    "de": {
        "button": "Rückruf anfordern",
        "title": "Wir rufen Sie zurück",
        "intro_now": "Hinterlassen Sie Ihre Nummer, ein Berater ruft Sie sofort an.",
        "intro_later": "Gerade kann niemand anrufen. Wählen Sie eine passende Zeit.",
        "intro_message": "Gerade kann niemand anrufen. Hinterlassen Sie eine Nachricht, wir melden uns.",
        "phone": "Ihre Telefonnummer",
        "name": "Ihr Name (optional)",
        "time": "Wann sollen wir anrufen?",
        "message": "Ihre Nachricht",
        "consent": "Ich bin einverstanden, wegen meiner Anfrage angerufen zu werden.",
        "submit_now": "Jetzt anrufen",
        "submit_later": "Zu dieser Zeit anrufen",
        "submit_message": "Senden",
        "close": "Schließen",
        "again": "Erneut versuchen",
        "cancel": "Anfrage stornieren",
        "sending": "Wird gesendet…",
        "network": "Der Server ist nicht erreichbar. Prüfen Sie Ihre Verbindung und versuchen Sie es erneut.",
        "queued": "Wir warten auf einen freien Berater…",
        "accepted": "Anfrage erhalten. Wir rufen einen Berater an…",
        "calling_step": "Wir rufen einen Berater an — {n} von {of}",
        "queue_position": "Sie sind Nummer {n} in der Warteschlange.",
        "calling_manager": "Wir rufen einen Berater an…",
        "calling_visitor": "Ein Berater ist bereit, Ihr Telefon klingelt gleich.",
        "connected": "Verbunden. Viel Erfolg beim Gespräch!",
        "completed": "Das Gespräch ist beendet. Vielen Dank!",
        "scheduled": "Wir rufen Sie an: {time}.",
        "retry": "Wir haben Sie nicht erreicht. Nächster Versuch: {time}.",
        "missed": "Leider konnte gerade kein Berater annehmen. Ihre Anfrage ist gespeichert, wir rufen zurück.",
        "unreachable": "Wir haben mehrmals versucht, Sie anzurufen, aber Sie nicht erreicht.",
        "failed": "Leider konnte der Anruf wegen eines technischen Problems nicht aufgebaut werden.",
        "rejected": "Leider können wir diese Anfrage nicht annehmen.",
        "cancelled": "Diese Anfrage wurde storniert.",
        "received": "Vielen Dank! Wir haben Ihre Nachricht erhalten und melden uns.",
    },
}
# The API's refusals as the visitor reads them, in each widget language but English (the English sentence
# is the one raised, see server/errors.py). Keyed by the English sentence; `{countries}` becomes country
# names in the visitor's language and `{n}` a number.
ERRORS: dict[str, dict[str, str]] = {
    "pl": {
        "Please enter your phone number.": "Podaj swój numer telefonu.",
        "That is too long for a phone number.": "To za długie jak na numer telefonu.",
        "This does not look like a phone number. Check the digits.":
            "To nie wygląda na numer telefonu. Sprawdź cyfry.",
        "This phone number is not valid. Check the digits, or add the country code (e.g. +44).":
            "Ten numer telefonu jest nieprawidłowy. Sprawdź cyfry lub dodaj numer kierunkowy kraju (np. +48).",
        "Sorry, we can only call numbers from {countries}.":
            "Przepraszamy, dzwonimy tylko na numery z tych krajów: {countries}.",
        "We cannot call this kind of number. Please give a mobile or landline number.":
            "Nie możemy dzwonić na ten rodzaj numeru. Podaj numer komórkowy lub stacjonarny.",
        "We cannot call this number.": "Nie możemy zadzwonić na ten numer.",
        "We are already handling a request for this number. Please wait until it is over.":
            "Zajmujemy się już zgłoszeniem dla tego numeru. Poczekaj, aż się zakończy.",
        "Too many requests from your network. Please try again later.":
            "Zbyt wiele zgłoszeń z Twojej sieci. Spróbuj ponownie później.",
        "Too many requests from this browser. Please try again later.":
            "Zbyt wiele zgłoszeń z tej przeglądarki. Spróbuj ponownie później.",
        "Too many requests for this number. Please try again later.":
            "Zbyt wiele zgłoszeń dla tego numeru. Spróbuj ponownie później.",
        "This site takes no more requests right now. Please try again later.":
            "Ta strona nie przyjmuje teraz więcej zgłoszeń. Spróbuj ponownie później.",
        "We could not take your request just now. Please try again in a minute.":
            "Nie mogliśmy teraz przyjąć zgłoszenia. Spróbuj ponownie za minutę.",
        "Please reload the page and send the form again.": "Odśwież stronę i wyślij formularz ponownie.",
        "That was quicker than a person can type. Please try again.":
            "To było szybciej, niż człowiek potrafi pisać. Spróbuj ponownie.",
        "The form has expired. Please reload the page and send it again.":
            "Formularz wygasł. Odśwież stronę i wyślij go ponownie.",
        "Please agree to be called before sending the request.":
            "Zanim wyślesz zgłoszenie, zgódź się na telefon.",
        "This time has already passed. Please pick a later one.": "Ten termin już minął. Wybierz późniejszy.",
        "Nobody can call in the coming weeks. Please leave a message instead.":
            "W najbliższych tygodniach nikt nie może zadzwonić. Zostaw wiadomość.",
        "Please fill this in.": "Wypełnij to pole.",
        "This is too long: at most {n} characters.": "To za długie: najwyżej {n} znaków.",
    },
    "ru": {
        "Please enter your phone number.": "Введите номер телефона.",
        "That is too long for a phone number.": "Слишком длинно для номера телефона.",
        "This does not look like a phone number. Check the digits.":
            "Это не похоже на номер телефона. Проверьте цифры.",
        "This phone number is not valid. Check the digits, or add the country code (e.g. +44).":
            "Этот номер телефона неверен. Проверьте цифры или добавьте код страны (например, +7).",
        "Sorry, we can only call numbers from {countries}.":
            "К сожалению, мы звоним только на номера этих стран: {countries}.",
        "We cannot call this kind of number. Please give a mobile or landline number.":
            "Мы не можем звонить на такой номер. Укажите мобильный или городской номер.",
        "We cannot call this number.": "Мы не можем позвонить на этот номер.",
        "We are already handling a request for this number. Please wait until it is over.":
            "Заявка для этого номера уже в работе. Дождитесь её завершения.",
        "Too many requests from your network. Please try again later.":
            "Слишком много заявок из вашей сети. Попробуйте позже.",
        "Too many requests from this browser. Please try again later.":
            "Слишком много заявок из этого браузера. Попробуйте позже.",
        "Too many requests for this number. Please try again later.":
            "Слишком много заявок для этого номера. Попробуйте позже.",
        "This site takes no more requests right now. Please try again later.":
            "Сейчас сайт больше не принимает заявки. Попробуйте позже.",
        "We could not take your request just now. Please try again in a minute.":
            "Сейчас мы не смогли принять заявку. Попробуйте снова через минуту.",
        "Please reload the page and send the form again.": "Обновите страницу и отправьте форму снова.",
        "That was quicker than a person can type. Please try again.":
            "Это быстрее, чем может печатать человек. Попробуйте снова.",
        "The form has expired. Please reload the page and send it again.":
            "Срок действия формы истёк. Обновите страницу и отправьте её снова.",
        "Please agree to be called before sending the request.":
            "Перед отправкой заявки дайте согласие на звонок.",
        "This time has already passed. Please pick a later one.": "Это время уже прошло. Выберите более позднее.",
        "Nobody can call in the coming weeks. Please leave a message instead.":
            "В ближайшие недели никто не сможет позвонить. Оставьте, пожалуйста, сообщение.",
        "Please fill this in.": "Заполните это поле.",
        "This is too long: at most {n} characters.": "Слишком длинно: не более {n} символов.",
    },
    "de": {
        "Please enter your phone number.": "Bitte geben Sie Ihre Telefonnummer ein.",
        "That is too long for a phone number.": "Das ist zu lang für eine Telefonnummer.",
        "This does not look like a phone number. Check the digits.":
            "Das sieht nicht wie eine Telefonnummer aus. Prüfen Sie die Ziffern.",
        "This phone number is not valid. Check the digits, or add the country code (e.g. +44).":
            "Diese Telefonnummer ist ungültig. Prüfen Sie die Ziffern oder ergänzen Sie die Landesvorwahl "
            "(z. B. +49).",
        "Sorry, we can only call numbers from {countries}.":
            "Leider rufen wir nur Nummern aus diesen Ländern an: {countries}.",
        "We cannot call this kind of number. Please give a mobile or landline number.":
            "Diese Art von Nummer können wir nicht anrufen. Bitte geben Sie eine Mobil- oder Festnetznummer an.",
        "We cannot call this number.": "Diese Nummer können wir nicht anrufen.",
        "We are already handling a request for this number. Please wait until it is over.":
            "Für diese Nummer bearbeiten wir bereits eine Anfrage. Bitte warten Sie, bis sie abgeschlossen ist.",
        "Too many requests from your network. Please try again later.":
            "Zu viele Anfragen aus Ihrem Netzwerk. Bitte versuchen Sie es später erneut.",
        "Too many requests from this browser. Please try again later.":
            "Zu viele Anfragen aus diesem Browser. Bitte versuchen Sie es später erneut.",
        "Too many requests for this number. Please try again later.":
            "Zu viele Anfragen für diese Nummer. Bitte versuchen Sie es später erneut.",
        "This site takes no more requests right now. Please try again later.":
            "Diese Website nimmt gerade keine Anfragen mehr an. Bitte versuchen Sie es später erneut.",
        "We could not take your request just now. Please try again in a minute.":
            "Wir konnten Ihre Anfrage gerade nicht annehmen. Bitte versuchen Sie es in einer Minute erneut.",
        "Please reload the page and send the form again.":
            "Bitte laden Sie die Seite neu und senden Sie das Formular erneut.",
        "That was quicker than a person can type. Please try again.":
            "Das ging schneller, als ein Mensch tippen kann. Bitte versuchen Sie es erneut.",
        "The form has expired. Please reload the page and send it again.":
            "Das Formular ist abgelaufen. Bitte laden Sie die Seite neu und senden Sie es erneut.",
        "Please agree to be called before sending the request.":
            "Bitte stimmen Sie dem Rückruf zu, bevor Sie die Anfrage senden.",
        "This time has already passed. Please pick a later one.":
            "Diese Zeit ist schon vorbei. Bitte wählen Sie eine spätere.",
        "Nobody can call in the coming weeks. Please leave a message instead.":
            "In den nächsten Wochen kann niemand anrufen. Bitte hinterlassen Sie stattdessen eine Nachricht.",
        "Please fill this in.": "Bitte füllen Sie dieses Feld aus.",
        "This is too long: at most {n} characters.": "Das ist zu lang: höchstens {n} Zeichen.",
    },
}
LANGUAGES = tuple(TEXTS)
DEFAULT_LANGUAGE = "en"
# Right-to-left languages, for when one joins TEXTS; the widget sets `dir` from this.
RTL = frozenset({"ar", "he", "fa", "ur"})
