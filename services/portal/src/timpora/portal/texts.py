"""Every text the pages show, in Bahasa Indonesia (the default) and English: one key, two languages."""

from __future__ import annotations

from typing import Literal

Language = Literal["id", "en"]
LANGUAGES: tuple[Language, ...] = ("id", "en")

TEXTS: dict[str, dict[Language, str]] = {
    "app.name": {"id": "Portal TIMPORA", "en": "TIMPORA portal"},
    "app.tagline": {
        "id": "Tim Pengawasan Orang Asing",
        "en": "Foreigner Supervision Team",
    },
    "lang.switch": {"id": "English", "en": "Bahasa Indonesia"},
    "login.title": {"id": "Masuk", "en": "Log in"},
    "login.username": {"id": "Nama pengguna", "en": "Username"},
    "login.password": {"id": "Kata sandi", "en": "Password"},
    "login.submit": {"id": "Masuk", "en": "Log in"},
    "login.failed": {
        "id": "Nama pengguna atau kata sandi salah.",
        "en": "Wrong username or password.",
    },
    "login.throttled": {
        "id": "Terlalu banyak percobaan masuk yang gagal. Tunggu satu menit, lalu coba lagi.",
        "en": "Too many failed logins. Wait a minute, then try again.",
    },
    "login.expired": {
        "id": "Sesi Anda telah berakhir. Silakan masuk lagi.",
        "en": "Your session has ended. Please log in again.",
    },
    "password.title": {"id": "Ganti kata sandi", "en": "Change your password"},
    "password.first": {
        "id": "Ini login pertama Anda: ganti kata sandi sekali pakai dengan kata sandi Anda sendiri.",
        "en": "This is your first login: replace the one-time password with your own.",
    },
    "password.current": {"id": "Kata sandi saat ini", "en": "Current password"},
    "password.new": {"id": "Kata sandi baru", "en": "New password"},
    "password.repeat": {"id": "Ulangi kata sandi baru", "en": "New password again"},
    "password.submit": {"id": "Simpan kata sandi", "en": "Save the password"},
    "password.hint": {
        "id": "Paling sedikit 12 karakter. Setelah diganti, semua sesi lain akan keluar.",
        "en": "At least 12 characters. Once changed, every other session is logged out.",
    },
    "password.too_short": {
        "id": "Kata sandi terlalu pendek: paling sedikit 12 karakter.",
        "en": "The password is too short: at least 12 characters.",
    },
    "password.has_username": {
        "id": "Kata sandi tidak boleh memuat nama pengguna.",
        "en": "The password must not contain the username.",
    },
    "password.same": {
        "id": "Kata sandi baru harus berbeda dari yang sekarang.",
        "en": "The new password must differ from the current one.",
    },
    "password.mismatch": {
        "id": "Kedua kata sandi baru tidak sama.",
        "en": "The two new passwords differ.",
    },
    "password.wrong": {"id": "Kata sandi saat ini salah.", "en": "The current password is wrong."},
    "password.changed": {
        "id": "Kata sandi telah diganti. Sesi lain telah keluar.",
        "en": "The password was changed. Every other session was logged out.",
    },
    "totp.title": {"id": "Verifikasi dua langkah", "en": "Two-step verification"},
    "totp.enrol": {
        "id": "Peran Anda wajib memakai kode dari aplikasi autentikator (misalnya Google Authenticator). "
        "Tambahkan kunci di bawah ini ke aplikasi, lalu masukkan kode 6 angka yang ditampilkannya.",
        "en": "Your role must use a code from an authenticator app (Google Authenticator, for example). "
        "Add the key below to the app, then enter the 6-digit code it shows.",
    },
    "totp.enrol_optional": {
        "id": "Lindungi akun Anda dengan kode dari aplikasi autentikator: tambahkan kunci di bawah ini ke "
        "aplikasi, lalu masukkan kode 6 angka yang ditampilkannya.",
        "en": "Protect your account with a code from an authenticator app: add the key below to the app, then "
        "enter the 6-digit code it shows.",
    },
    "totp.key": {"id": "Kunci", "en": "Key"},
    "totp.code": {"id": "Kode 6 angka", "en": "6-digit code"},
    "totp.submit": {"id": "Verifikasi", "en": "Verify"},
    "totp.ask": {
        "id": "Masukkan kode 6 angka dari aplikasi autentikator Anda.",
        "en": "Enter the 6-digit code from your authenticator app.",
    },
    "totp.wrong": {
        "id": "Kode salah atau sudah dipakai. Tunggu kode berikutnya.",
        "en": "The code is wrong or was already used. Wait for the next one.",
    },
    "totp.enabled": {
        "id": "Verifikasi dua langkah aktif.",
        "en": "Two-step verification is on.",
    },
    "home.title": {"id": "Beranda", "en": "Home"},
    "home.welcome": {"id": "Selamat datang", "en": "Welcome"},
    "home.agency": {"id": "Instansi", "en": "Agency"},
    "home.role": {"id": "Peran", "en": "Role"},
    "home.alerts_open": {"id": "peringatan belum ditangani", "en": "alerts nobody has taken in hand"},
    "home.alerts_acknowledged": {"id": "peringatan sedang ditangani", "en": "alerts in hand, not yet resolved"},
    "home.figures": {"id": "Sekilas", "en": "At a glance"},
    "nav.password": {"id": "Ganti kata sandi", "en": "Change password"},
    "nav.totp": {"id": "Verifikasi dua langkah", "en": "Two-step verification"},
    "nav.logout": {"id": "Keluar", "en": "Log out"},
    "logout.done": {"id": "Anda telah keluar.", "en": "You have logged out."},
    "role.officer": {"id": "Petugas instansi", "en": "Agency officer"},
    "role.village": {"id": "Kepala desa", "en": "Village head"},
    "role.immigration": {"id": "Petugas imigrasi", "en": "Immigration officer"},
    "role.operator": {"id": "Operator", "en": "Operator"},
    "error.not_found": {"id": "Halaman tidak ditemukan", "en": "Page not found"},
    "error.not_found_text": {
        "id": "Halaman yang Anda cari tidak ada, atau bukan untuk instansi Anda.",
        "en": "The page you asked for does not exist, or is not your agency's.",
    },
    "error.forbidden": {
        "id": "Formulir ini kedaluwarsa atau tidak sah. Muat ulang halaman dan coba lagi.",
        "en": "This form has expired or is not valid. Reload the page and try again.",
    },
    "error.back": {"id": "Kembali ke beranda", "en": "Back to the home page"},
}


def text(key: str, language: Language) -> str:
    """The text of ``key`` in ``language``; a missing key is a bug the tests catch (every key used is listed)."""
    return TEXTS[key][language]


#: What each field of a record is called on the pages (the agreement says which of them an agency sees).
FIELD_LABELS: dict[str, dict[Language, str]] = {
    "full_name": {"id": "Nama lengkap", "en": "Full name"},
    "sex": {"id": "Jenis kelamin", "en": "Sex"},
    "date_of_birth": {"id": "Tanggal lahir", "en": "Date of birth"},
    "birth_year": {"id": "Tahun lahir", "en": "Year of birth"},
    "nationality": {"id": "Kewarganegaraan", "en": "Nationality"},
    "passport_number": {"id": "Nomor paspor", "en": "Passport number"},
    "passport_country": {"id": "Negara penerbit paspor", "en": "Passport issued by"},
    "passport_expires_on": {"id": "Paspor berlaku sampai", "en": "Passport valid until"},
    "occupation": {"id": "Pekerjaan", "en": "Occupation"},
    "sponsor_name": {"id": "Penjamin", "en": "Sponsor"},
    "sponsor_kind": {"id": "Jenis penjamin", "en": "Kind of sponsor"},
    "residence_address": {"id": "Alamat tinggal", "en": "Address"},
    "residence_village_code": {"id": "Desa/kelurahan tempat tinggal", "en": "Village of residence"},
    "residence_since": {"id": "Tinggal sejak", "en": "Living there since"},
    "stay_provider": {"id": "Tempat menginap", "en": "Accommodation"},
    "stay_village_code": {"id": "Desa/kelurahan tempat menginap", "en": "Village of the accommodation"},
    "stay_check_in": {"id": "Tanggal masuk penginapan", "en": "Checked in"},
    "stay_check_out": {"id": "Tanggal keluar penginapan", "en": "Checked out"},
    "permit_number": {"id": "Nomor izin tinggal", "en": "Stay permit number"},
    "permit_type": {"id": "Jenis izin tinggal", "en": "Stay permit type"},
    "permit_purpose": {"id": "Tujuan izin tinggal", "en": "Purpose of the permit"},
    "permit_issued_on": {"id": "Izin diterbitkan", "en": "Permit issued"},
    "permit_expires_on": {"id": "Izin berlaku sampai", "en": "Permit valid until"},
    "permit_status": {"id": "Status izin", "en": "Permit status"},
    "permit_fee_paid_days": {"id": "Hari overstay yang dibayar", "en": "Overstay days paid"},
    "visa_index": {"id": "Indeks visa", "en": "Visa index"},
    "presence": {"id": "Keberadaan", "en": "Presence"},
    "arrival_port": {"id": "Tempat pemeriksaan kedatangan", "en": "Port of arrival"},
    "arrived_on": {"id": "Tanggal kedatangan", "en": "Arrived on"},
    "departure_port": {"id": "Tempat pemeriksaan keberangkatan", "en": "Port of departure"},
    "departed_on": {"id": "Tanggal keberangkatan", "en": "Departed on"},
    "days_to_expiry": {"id": "Sisa hari izin", "en": "Days left on the permit"},
    "overstaying": {"id": "Melebihi izin tinggal (overstay)", "en": "Overstaying"},
    "days_overstayed": {"id": "Hari overstay", "en": "Days overstayed"},
    "deportation_due": {"id": "Wajib dideportasi", "en": "Deportation due"},
}


def _more(texts: dict[str, dict[Language, str]]) -> None:
    """Adds a page's texts: a key already taken is a mistake (one page's words would silently replace another's)."""
    if taken := sorted(texts.keys() & TEXTS.keys()):
        raise AssertionError(f"text keys defined twice: {taken}")
    TEXTS.update(texts)


_more(
    {
        "nav.foreigners": {"id": "Daftar orang asing", "en": "Foreigners"},
        "foreigners.title": {"id": "Daftar orang asing", "en": "Foreigners"},
        "foreigners.filter": {"id": "Saring", "en": "Filter"},
        "foreigners.name": {"id": "Nama", "en": "Name"},
        "foreigners.region": {"id": "Kode wilayah", "en": "Region code"},
        "foreigners.nationality": {"id": "Kewarganegaraan (kode 3 huruf)", "en": "Nationality (3-letter code)"},
        "foreigners.presence": {"id": "Keberadaan", "en": "Presence"},
        "foreigners.passport": {"id": "Nomor paspor", "en": "Passport number"},
        "foreigners.none": {"id": "Tidak ada orang asing yang cocok.", "en": "No foreigner matches."},
        "foreigners.next": {"id": "Halaman berikutnya", "en": "Next page"},
        "foreigners.first": {"id": "Halaman pertama", "en": "First page"},
        "foreigners.open": {"id": "Lihat", "en": "Open"},
        "foreigners.back": {"id": "Kembali ke daftar", "en": "Back to the list"},
        "foreigners.recorded": {
            "id": "Setiap tampilan data ini dicatat atas nama Anda.",
            "en": "Every view of this data is recorded under your name.",
        },
        "nav.recap": {"id": "Rekap bulanan", "en": "Monthly recap"},
        "recap.title": {"id": "Rekap bulanan", "en": "Monthly recap"},
        "recap.month": {"id": "Bulan", "en": "Month"},
        "recap.show": {"id": "Tampilkan", "en": "Show"},
        "recap.csv": {"id": "Unduh CSV", "en": "Download CSV"},
        "recap.print": {
            "id": "Untuk rapat: cetak halaman ini (Ctrl+P); menu dan formulir tidak ikut tercetak.",
            "en": "For the meeting: print this page (Ctrl+P); the menus and forms are left out.",
        },
        "recap.as_of": {"id": "Keadaan per", "en": "As of"},
        "recap.incomplete": {
            "id": "bulan berjalan: angka masih dapat berubah",
            "en": "the month under way: the figures may still change",
        },
        "recap.people": {"id": "Orang asing", "en": "Foreigners"},
        "recap.arrivals": {"id": "Kedatangan bulan ini", "en": "Arrivals in the month"},
        "recap.departures": {"id": "Keberangkatan bulan ini", "en": "Departures in the month"},
        "recap.expiring_within_30_days": {
            "id": "Izin tinggal berakhir dalam 30 hari",
            "en": "Permits ending within 30 days",
        },
        "recap.overstay_up_to_60_days": {
            "id": "Overstay sampai 60 hari (denda)",
            "en": "Overstaying up to 60 days (fee)",
        },
        "recap.overstay_over_60_days": {
            "id": "Overstay lebih dari 60 hari (deportasi)",
            "en": "Overstaying over 60 days (deportation)",
        },
        "recap.by_district": {"id": "Per kecamatan", "en": "By district"},
        "recap.by_nationality": {"id": "Per kewarganegaraan", "en": "By nationality"},
        "recap.district": {"id": "Kecamatan", "en": "District"},
        "recap.nationality": {"id": "Kewarganegaraan", "en": "Nationality"},
        "recap.count": {"id": "Jumlah", "en": "Count"},
        "recap.no_district": {"id": "Belum melapor tempat tinggal", "en": "No residence reported"},
        "recap.sponsors": {"id": "Per penjamin", "en": "By sponsor"},
        "recap.sponsor": {"id": "Penjamin", "en": "Sponsor"},
        "recap.no_sponsor": {"id": "Tanpa penjamin", "en": "No sponsor"},
        "recap.omitted": {
            "id": "Bagian yang tidak termasuk perjanjian instansi Anda:",
            "en": "Sections your agency's agreement does not include:",
        },
        "problem.name": {"id": "Ketik paling sedikit 2 huruf dari nama.", "en": "Type at least 2 letters of the name."},
        "problem.passport": {
            "id": "Nomor paspor: 5 sampai 20 huruf atau angka, tanpa spasi.",
            "en": "A passport number: 5 to 20 letters or digits, no spaces.",
        },
        "problem.region": {
            "id": "Kode wilayah Kemendagri, misalnya 35.26 (kabupaten), 35.26.05 (kecamatan) "
            "atau 35.26.05.2003 (desa).",
            "en": "A Kemendagri region code, e.g. 35.26 (regency), 35.26.05 (district) or 35.26.05.2003 (village).",
        },
        "problem.nationality": {
            "id": "Kode negara 3 huruf, misalnya CHN, AUS atau MYS.",
            "en": "A 3-letter country code, e.g. CHN, AUS or MYS.",
        },
        "problem.presence": {"id": "Pilih salah satu dari daftar.", "en": "Choose one of the list."},
        "problem.month": {
            "id": "Pilih bulan yang sudah lewat atau bulan ini.",
            "en": "Choose a past month or the month under way.",
        },
        "problem.cursor": {
            "id": "Halaman ini tidak ada lagi; mulai dari halaman pertama.",
            "en": "This page is gone; start again from the first page.",
        },
        "problem.other": {"id": "Isian ini tidak dapat dipakai.", "en": "This value cannot be used."},
        "error.too_many": {
            "id": "Terlalu banyak permintaan dalam satu menit. Tunggu sebentar, lalu muat ulang halaman.",
            "en": "Too many requests within a minute. Wait a moment, then reload the page.",
        },
        "sex.M": {"id": "Laki-laki", "en": "Male"},
        "sex.F": {"id": "Perempuan", "en": "Female"},
        "permit_status.active": {"id": "Berlaku", "en": "In force"},
        "permit_status.expired": {"id": "Kedaluwarsa", "en": "Expired"},
        "permit_status.revoked": {"id": "Dicabut", "en": "Revoked"},
        "permit_status.ended": {"id": "Berakhir", "en": "Ended"},
        "permit_status.extended": {"id": "Diperpanjang", "en": "Extended"},
        "sex.X": {"id": "Tidak disebutkan", "en": "Not stated"},
        "totp.open_app": {"id": "Buka di aplikasi autentikator", "en": "Open in the authenticator app"},
        "nav.alerts": {"id": "Peringatan", "en": "Alerts"},
        "alerts.title": {"id": "Peringatan instansi", "en": "Your agency's alerts"},
        "alerts.what": {"id": "Peringatan", "en": "Alert"},
        "alerts.who": {"id": "Orang asing", "en": "Foreigner"},
        "alerts.when": {"id": "Waktu", "en": "When"},
        "alerts.state": {"id": "Status", "en": "Status"},
        "alerts.none": {"id": "Tidak ada peringatan.", "en": "No alerts."},
        "alerts.back": {"id": "Kembali ke daftar peringatan", "en": "Back to the alerts"},
        "alerts.person": {"id": "Orang asing", "en": "The foreigner"},
        "alerts.status.all": {"id": "Semua", "en": "All"},
        "alerts.status.open": {"id": "Baru", "en": "Open"},
        "alerts.status.acknowledged": {"id": "Sedang ditangani", "en": "In hand"},
        "alerts.status.resolved": {"id": "Selesai", "en": "Resolved"},
        "alerts.status.superseded": {"id": "Digantikan", "en": "Superseded"},
        "alerts.acknowledge": {"id": "Tandai sedang ditangani", "en": "Mark as in hand"},
        "alerts.resolve": {"id": "Selesaikan", "en": "Resolve"},
        "alerts.resolution": {"id": "Tindakan yang dilakukan", "en": "What was done"},
        "alerts.acknowledged_by": {"id": "Ditangani oleh", "en": "In hand by"},
        "alerts.resolved_by": {"id": "Diselesaikan oleh", "en": "Resolved by"},
        "alerts.resolution_needed": {
            "id": "Tuliskan tindakan yang dilakukan (paling banyak 1000 karakter).",
            "en": "Say what was done (at most 1,000 characters).",
        },
        "alerts.already": {
            "id": "Peringatan ini sudah ditangani atau diselesaikan oleh orang lain; lihat statusnya di bawah.",
            "en": "Someone else already took this alert in hand or resolved it; see its status below.",
        },
        "alerts.in_your_name": {
            "id": "Tindakan Anda dicatat atas nama Anda sendiri.",
            "en": "What you do here is recorded under your own name.",
        },
        "presence.present": {"id": "Berada di Indonesia", "en": "In Indonesia"},
        "presence.departed": {"id": "Sudah keluar", "en": "Departed"},
        "presence.deported": {"id": "Dideportasi", "en": "Deported"},
        "presence.deceased": {"id": "Meninggal dunia", "en": "Deceased"},
        "presence.any": {"id": "Semua", "en": "Everyone"},
        "yes": {"id": "Ya", "en": "Yes"},
        "no": {"id": "Tidak", "en": "No"},
        "error.unavailable": {
            "id": "Data sedang tidak dapat diambil. Coba lagi sebentar lagi; bila berlanjut, hubungi operator.",
            "en": "The data cannot be fetched right now. Try again shortly; if it goes on, tell the operator.",
        },
        "error.method": {
            "id": "Halaman ini tidak dapat dibuka dengan cara itu. Kembali ke beranda dan gunakan menu.",
            "en": "This page cannot be opened that way. Go back to the home page and use the menu.",
        },
        "error.no_agreement": {
            "id": "Instansi Anda tidak memiliki perjanjian berbagi data yang berlaku, jadi tidak ada data yang "
            "dapat ditampilkan.",
            "en": "Your agency has no data-sharing agreement in force, so there is no data to show.",
        },
    }
)

_more(
    {
        "nav.arrival": {"id": "Catat kedatangan", "en": "Record an arrival"},
        "desk.arrival": {"id": "Catat kedatangan orang asing", "en": "Record a foreigner's arrival"},
        "desk.person": {"id": "Identitas", "en": "The person"},
        "desk.passport": {"id": "Paspor", "en": "Passport"},
        "desk.entry": {"id": "Kedatangan", "en": "The entry"},
        "desk.residence": {"id": "Tempat tinggal", "en": "Residence"},
        "desk.residence_hint": {
            "id": "Isi bila orang asing sudah melaporkan tempat tinggalnya: sejak itu ia tampil di daftar instansi "
            "yang membawahi desanya.",
            "en": "Fill in if the foreigner has reported where they live: from then on they are on the lists of the "
            "agencies over that village.",
        },
        "desk.f.full_name": {"id": "Nama lengkap", "en": "Full name"},
        "desk.f.sex": {"id": "Jenis kelamin", "en": "Sex"},
        "desk.f.date_of_birth": {"id": "Tanggal lahir", "en": "Date of birth"},
        "desk.f.nationality": {
            "id": "Kewarganegaraan (kode 3 huruf, mis. CHN)",
            "en": "Nationality (3 letters, e.g. CHN)",
        },
        "desk.f.occupation": {"id": "Pekerjaan", "en": "Occupation"},
        "desk.f.passport_number": {"id": "Nomor paspor", "en": "Passport number"},
        "desk.f.passport_country": {"id": "Negara penerbit paspor (3 huruf)", "en": "Issuing country (3 letters)"},
        "desk.f.passport_expires_on": {"id": "Paspor berlaku sampai", "en": "Passport valid until"},
        "desk.f.sponsor_name": {"id": "Penjamin", "en": "Sponsor"},
        "desk.f.sponsor_kind": {
            "id": "Jenis penjamin (perusahaan, keluarga, lembaga)",
            "en": "Kind of sponsor (employer, family, institution)",
        },
        "desk.f.port": {"id": "Tempat pemeriksaan imigrasi", "en": "Immigration checkpoint"},
        "desk.f.arrived_on": {"id": "Tanggal kedatangan", "en": "Arrived on"},
        "desk.f.visa_index": {"id": "Indeks visa (mis. B1, C3, E23)", "en": "Visa index (e.g. B1, C3, E23)"},
        "desk.f.residence_address": {"id": "Alamat", "en": "Address"},
        "desk.f.residence_village_code": {
            "id": "Kode desa Kemendagri (mis. 35.26.05.2003)",
            "en": "Kemendagri village code (e.g. 35.26.05.2003)",
        },
        "desk.f.residence_since": {
            "id": "Tinggal di sana sejak (kosong: sejak kedatangan)",
            "en": "Living there since (empty: since the arrival)",
        },
        "desk.needed": {"id": "wajib", "en": "required"},
        "desk.required": {"id": "Wajib diisi.", "en": "Required."},
        "desk.unknown_village": {
            "id": "Bukan kode desa dalam daftar resmi Kemendagri (bentuknya 35.26.05.2003).",
            "en": "Not a village code of the official Kemendagri list (it looks like 35.26.05.2003).",
        },
        "desk.outside_area": {
            "id": "Desa ini di luar wilayah kerja kantor Anda.",
            "en": "This village is outside your office's area.",
        },
        "desk.registry_says": {"id": "Ditolak registri:", "en": "The registry refused it:"},
        "desk.arrival_kept": {
            "id": "Kedatangan sudah tercatat, tetapi tempat tinggalnya ditolak: perbaiki tempat tinggal lalu kirim "
            "lagi (data kedatangan tidak dapat diubah di sini).",
            "en": "The arrival is recorded, but the residence was refused: correct the residence and send again (the "
            "arrival cannot be changed here).",
        },
        "desk.unavailable": {
            "id": "Registri sedang tidak menjawab; tidak ada yang dicatat. Kirim lagi sebentar lagi: isian Anda tetap.",
            "en": "The registry is not answering; nothing was recorded. Send again shortly: what you typed is kept.",
        },
        "desk.residence_unavailable": {
            "id": "Kedatangan sudah tercatat, tetapi registri tidak menjawab untuk tempat tinggalnya. Kirim lagi "
            "sebentar lagi: hanya tempat tinggal yang akan dicatat.",
            "en": "The arrival is recorded, but the registry did not answer for the residence. Send again shortly: "
            "only the residence will be recorded.",
        },
        "desk.record": {"id": "Catat kedatangan", "en": "Record the arrival"},
        "desk.arrival_done": {"id": "Kedatangan tercatat", "en": "Arrival recorded"},
        "desk.created": {
            "id": "Orang asing ini baru tercatat di registri, atas nama Anda.",
            "en": "The foreigner is now in the registry, recorded under your name.",
        },
        "desk.matched": {
            "id": "Orang asing ini sudah ada di registri (kewarganegaraan dan paspor yang sama): kedatangannya "
            "dicatat pada data yang ada.",
            "en": "The foreigner was already in the registry (same nationality and passport): the arrival is on "
            "their record.",
        },
        "nav.privacy": {"id": "Catatan pengungkapan", "en": "Disclosure record"},
        "privacy.title": {"id": "Catatan pengungkapan data pribadi", "en": "The disclosure record"},
        "privacy.intro": {
            "id": "Siapa menerima data siapa, kapan, lewat saluran apa, dan atas dasar apa. Untuk menjawab permintaan "
            "orang asing tentang siapa yang menerima datanya (UU 27/2022 pasal 32, dalam 3x24 jam): isi ID orang "
            "asingnya. Setiap pencarian di sini dicatat atas nama Anda.",
            "en": "Who received whose data, when, on which channel and on what basis. To answer a person's request to "
            "know who received their data (UU 27/2022 art. 32, within 3x24 hours): give their foreigner id. Every "
            "search here is recorded under your name.",
        },
        "privacy.foreigner_id": {"id": "ID orang asing", "en": "Foreigner id"},
        "privacy.agency_id": {
            "id": "Instansi penerima (mis. polres-bangkalan)",
            "en": "Receiving agency (e.g. polres-bangkalan)",
        },
        "privacy.officer": {"id": "Petugas", "en": "Officer"},
        "privacy.show": {"id": "Tampilkan", "en": "Show"},
        "privacy.agency": {"id": "Instansi", "en": "Agency"},
        "privacy.channel": {"id": "Saluran", "en": "Channel"},
        "privacy.fields": {"id": "Data yang diungkapkan", "en": "Fields disclosed"},
        "privacy.basis": {"id": "Dasar", "en": "Basis"},
        "privacy.basis.agreement": {"id": "Perjanjian", "en": "Agreement"},
        "privacy.basis.controller": {"id": "Pengendali (pemrosesan sendiri)", "en": "Controller (its own processing)"},
        "privacy.refused.agency_id": {
            "id": "Instansi ini tidak berada di wilayah kantor Anda.",
            "en": "This agency is not in your office's area.",
        },
        "privacy.refused.foreigner_id": {
            "id": "Isi salah satu: ID orang asing, instansi, atau petugas.",
            "en": "Give one of: a foreigner id, an agency or an officer.",
        },
        "privacy.refused.officer": {
            "id": "Nama pengguna petugas tidak dapat dipakai.",
            "en": "That officer's username cannot be used.",
        },
        "privacy.kinds": {"id": "jenis data", "en": "fields"},
        "privacy.people": {"id": "Jumlah orang", "en": "People"},
        "privacy.intact": {
            "id": "Catatan utuh: rantai hash tidak terputus. Entri diperiksa:",
            "en": "The record is intact: its hash chain holds. Entries checked:",
        },
        "privacy.walked": {
            "id": "Entri baru diperiksa setiap kali; seluruh rantai terakhir diperiksa dari awal:",
            "en": "New entries are checked on each look; the whole chain was last walked from its start:",
        },
        "privacy.first_walk": {
            "id": "Catatan sedang diperiksa dari awal untuk pertama kalinya; hasilnya tampil di sini segera.",
            "en": "The record is being checked from its start for the first time; the result shows here shortly.",
        },
        "privacy.overdue": {
            "id": (
                "PERHATIAN: seluruh rantai hash belum diperiksa ulang sesuai jadwal. Hubungi operator. "
                "Terakhir diperiksa:"
            ),
            "en": "WARNING: the whole hash chain was not walked again on schedule. Tell the operator. Last walked:",
        },
        "privacy.broken": {
            "id": "PERHATIAN: catatan tidak dapat dipercaya. Hubungi operator segera.",
            "en": "WARNING: the record cannot be trusted. Tell the operator at once.",
        },
        "privacy.truncated": {
            "id": "Hanya 500 entri terbaru yang ditampilkan; persempit pencarian.",
            "en": "Only the newest 500 entries are shown; narrow the search.",
        },
        "privacy.none": {"id": "Tidak ada pengungkapan yang cocok.", "en": "No disclosure matches."},
        "privacy.problem.foreigner_id": {
            "id": "ID orang asing berbentuk 8-4-4-4-12 huruf/angka heksadesimal.",
            "en": "A foreigner id looks like 8-4-4-4-12 hexadecimal digits.",
        },
        "privacy.problem.agency_id": {
            "id": "ID instansi seperti dalam daftar anggota, mis. polres-bangkalan.",
            "en": "An agency id as the register gives it, e.g. polres-bangkalan.",
        },
        "privacy.problem.officer": {
            "id": "Nama pengguna petugas, huruf kecil, mis. kades.lajing.",
            "en": "An officer's username, lower case, e.g. kades.lajing.",
        },
        "nav.worklist": {"id": "Daftar kerja", "en": "Worklist"},
        "desk.worklist": {
            "id": "Daftar kerja kantor: overstay dan izin yang segera berakhir",
            "en": "The office's worklist: overstays and permits ending soon",
        },
        "desk.overstaying": {"id": "Overstay (terlama lebih dulu)", "en": "Overstaying (longest first)"},
        "desk.expiring": {"id": "Izin berakhir dalam 30 hari", "en": "Permits ending within 30 days"},
        "desk.place": {"id": "Desa", "en": "Village"},
        "desk.due": {"id": "Tindakan", "en": "Due"},
        "desk.deport": {"id": "Deportasi dan penangkalan", "en": "Deportation and a re-entry ban"},
        "desk.fee": {"id": "Denda", "en": "Fee"},
        "desk.none": {"id": "Tidak ada.", "en": "None."},
        "desk.truncated": {
            "id": "Daftar terlalu panjang dan dipotong (yang paling mendesak tetap tampil): persempit per kecamatan "
            "atau desa.",
            "en": "The list is too long and was cut short (the most urgent are shown): narrow it to a district or "
            "village.",
        },
        "desk.residence_recorded": {
            "id": "Tempat tinggalnya kini tercatat pada kedatangan yang sudah dicatat tadi, atas nama Anda.",
            "en": "The residence is now recorded on the arrival recorded before, under your name.",
        },
        "desk.another": {"id": "Catat kedatangan lain", "en": "Record another arrival"},
        "chart.people": {
            "id": "Orang asing per kecamatan dan kewarganegaraan",
            "en": "Foreigners by district and nationality",
        },
        "chart.people_desc": {
            "id": "Satu batang per kecamatan, dibagi per kewarganegaraan; angkanya juga ada di tabel di bawah.",
            "en": "One bar per district, split by nationality; the numbers are also in the tables below.",
        },
        "chart.others": {"id": "lainnya", "en": "others"},
        "chart.flows": {
            "id": "Kedatangan dan keberangkatan per bulan",
            "en": "Arrivals and departures per month",
        },
        "chart.flows_desc": {
            "id": "Enam bulan sampai bulan rekap ini: kedatangan dan keberangkatan yang tercatat per bulan.",
            "en": "The six months up to this recap's: the arrivals and departures recorded in each.",
        },
        "chart.arrivals": {"id": "Kedatangan", "en": "Arrivals"},
        "chart.departures": {"id": "Keberangkatan", "en": "Departures"},
        "nav.report": {"id": "Lapor ke imigrasi", "en": "Report to immigration"},
        "report.title": {"id": "Laporan ke kantor imigrasi", "en": "A report to the immigration office"},
        "report.intro": {
            "id": "Laporkan orang asing atau keadaan yang mencurigakan di desa Anda. Kantor imigrasi langsung "
            "menerimanya sebagai peringatan.",
            "en": "Report a foreigner or a suspicious situation in your village. The immigration office receives it "
            "at once, as an alert.",
        },
        "report.about": {"id": "Siapa (nama atau ciri-ciri, bila diketahui)", "en": "Who (name or looks, if known)"},
        "report.where": {"id": "Di mana", "en": "Where"},
        "report.what": {"id": "Apa yang terjadi", "en": "What happened"},
        "report.photo": {"id": "Foto (JPEG atau PNG, boleh kosong)", "en": "Photo (JPEG or PNG, optional)"},
        "report.photo_hint": {
            "id": "Lokasi GPS dan data ponsel dihapus dari foto sebelum disimpan.",
            "en": "The GPS location and the phone's details are removed from the photo before it is kept.",
        },
        "report.photo_again": {
            "id": "Pilih fotonya lagi sebelum mengirim ulang.",
            "en": "Choose the photo again before sending once more.",
        },
        "report.submit": {"id": "Kirim laporan", "en": "Send the report"},
        "report.sent": {"id": "Laporan terkirim", "en": "Report sent"},
        "report.sent_detail": {
            "id": "Terima kasih. Laporan Anda sudah diterima kantor imigrasi dan disimpan.",
            "en": "Thank you. The immigration office has your report, and it is kept.",
        },
        "report.number": {"id": "Nomor laporan", "en": "Report number"},
        "report.sent_to": {"id": "Diterima oleh", "en": "Received by"},
        "report.another": {"id": "Buat laporan lain", "en": "Make another report"},
        "report.ref_used": {
            "id": "Formulir ini sudah mengirim laporan lain sebelumnya. Periksa isiannya, lalu kirim lagi: laporan "
            "ini akan dikirim sebagai laporan baru.",
            "en": "This form already sent another report. Check what it says, then send again: this one goes as a new "
            "report.",
        },
        "report.no_office": {
            "id": "Belum ada kantor imigrasi yang membawahi desa Anda dalam daftar anggota, jadi laporan tidak "
            "disimpan. Hubungi kantor imigrasi langsung, dan beri tahu operator.",
            "en": "No immigration office controls your village in the register, so the report was not kept. Call "
            "the immigration office directly, and tell the operator.",
        },
        "report.problem.about": {
            "id": "Paling banyak 300 karakter.",
            "en": "At most 300 characters.",
        },
        "report.problem.where": {
            "id": "Tuliskan di mana (paling banyak 300 karakter).",
            "en": "Say where (at most 300 characters).",
        },
        "report.problem.what": {
            "id": "Tuliskan apa yang terjadi (paling banyak 2000 karakter).",
            "en": "Say what happened (at most 2,000 characters).",
        },
        "report.problem.photo_base64": {
            "id": "Foto tidak dapat dipakai: harus JPEG atau PNG yang utuh, paling besar 6 MB.",
            "en": "The photo cannot be used: it must be a whole JPEG or PNG, at most 6 MB.",
        },
        "alerts.report": {"id": "Laporan desa", "en": "The village's report"},
        "alerts.report_by": {"id": "Pelapor", "en": "Reported by"},
        "alerts.report_about": {"id": "Siapa", "en": "Who"},
        "alerts.report_where": {"id": "Di mana", "en": "Where"},
        "alerts.report_what": {"id": "Apa yang terjadi", "en": "What happened"},
        "alerts.report_village": {"id": "Desa", "en": "Village"},
        "alerts.report_photo": {"id": "Foto dari pelapor", "en": "The reporter's photo"},
    }
)

# Immigration's casework: a person's record, and the changes the desk makes to it.
_more(
    {
        "nav.search": {"id": "Cari orang asing", "en": "Find a foreigner"},
        "desk.search": {"id": "Cari orang asing di wilayah kantor", "en": "Find a foreigner of the office's area"},
        "desk.find": {"id": "Cari", "en": "Find"},
        "problem.name3": {
            "id": "Ketik paling sedikit 3 huruf dari nama.",
            "en": "Type at least 3 letters of the name.",
        },
        "desk.person_record": {"id": "Catatan orang asing", "en": "A foreigner's record"},
        "desk.open_record": {"id": "Buka catatannya", "en": "Open the record"},
        "desk.changes": {"id": "Catat perubahan", "en": "Record a change"},
        "desk.the_record": {"id": "Data yang tercatat", "en": "What is recorded"},
        "desk.history": {"id": "Riwayat perubahan", "en": "History of changes"},
        "foreigners.what_changed": {"id": "Yang berubah", "en": "What changed"},
        "foreigners.changed": {"id": "Data berubah", "en": "Details changed"},
        "foreigners.entered_view": {"id": "masuk wilayah Anda", "en": "came into your area"},
        "foreigners.left_view": {"id": "keluar dari wilayah Anda", "en": "left your area"},
        "foreigners.history_unread": {
            "id": "Riwayatnya tidak dapat dibaca sekarang; data di atas tetap berlaku.",
            "en": "The history cannot be read now; the record above stands.",
        },
        "desk.version": {"id": "Versi", "en": "Version"},
        "desk.event": {"id": "Perubahan", "en": "Change"},
        "desk.by": {"id": "Oleh", "en": "By"},
        "desk.when": {"id": "Waktu", "en": "When"},
        "desk.ban": {"id": "Penangkalan", "en": "Re-entry ban"},
        "desk.overstayed_days": {"id": "Overstay {days} hari.", "en": "Overstayed by {days} days."},
        "desk.days_left": {"id": "Izin tinggal berakhir dalam {days} hari.", "en": "The permit ends in {days} days."},
        "desk.on_permit": {"id": "Izin yang berlaku:", "en": "The current permit:"},
        "desk.save": {"id": "Simpan", "en": "Save"},
        "desk.changed": {
            "id": "Catatan orang ini diubah orang lain sejak formulir dibuka: tidak ada yang dicatat. Periksa datanya "
            "di bawah, lalu kirim lagi.",
            "en": "Someone else changed this person's record since the form was opened: nothing was recorded. Check "
            "the record below, then send again.",
        },
        "desk.not_answered": {
            "id": "Registri tidak menjawab. Isian Anda tetap di sini: kirim lagi. Bila ternyata sudah tercatat, "
            "formulir yang sama tidak tercatat dua kali.",
            "en": "The registry did not answer. What you typed is kept here: send it again. If it was recorded after "
            "all, the same form is not recorded twice.",
        },
        "desk.last_change": {"id": "Perubahan terakhir:", "en": "Last change:"},
        "desk.action.permit": {"id": "Terbitkan izin tinggal", "en": "Issue a stay permit"},
        "desk.action.extension": {"id": "Perpanjang izin tinggal", "en": "Extend the stay permit"},
        "desk.action.conversion": {"id": "Alih status izin tinggal", "en": "Convert the stay permit"},
        "desk.action.revocation": {"id": "Cabut izin tinggal", "en": "Revoke the stay permit"},
        "desk.action.overstay-fee": {"id": "Catat pembayaran denda overstay", "en": "Record the overstay fee paid"},
        "desk.action.residence": {"id": "Lapor tempat tinggal (pindah)", "en": "Report a residence (a move)"},
        "desk.action.departure": {"id": "Catat keberangkatan", "en": "Record a departure"},
        "desk.action.enforcement": {"id": "Catat tindakan administratif", "en": "Record an administrative action"},
        "desk.action.deportation": {"id": "Catat deportasi", "en": "Record a deportation"},
        "desk.action.ban": {"id": "Catat penangkalan", "en": "Record a re-entry ban"},
        "desk.done.permit": {"id": "Izin tinggal diterbitkan.", "en": "The stay permit is issued."},
        "desk.done.extension": {"id": "Izin tinggal diperpanjang.", "en": "The stay permit is extended."},
        "desk.done.conversion": {"id": "Alih status tercatat.", "en": "The conversion is recorded."},
        "desk.done.revocation": {"id": "Izin tinggal dicabut.", "en": "The stay permit is revoked."},
        "desk.done.overstay-fee": {"id": "Pembayaran denda tercatat.", "en": "The fee paid is recorded."},
        "desk.done.residence": {"id": "Tempat tinggal tercatat.", "en": "The residence is recorded."},
        "desk.done.departure": {"id": "Keberangkatan tercatat.", "en": "The departure is recorded."},
        "desk.done.enforcement": {"id": "Tindakan administratif tercatat.", "en": "The action is recorded."},
        "desk.done.deportation": {"id": "Deportasi tercatat.", "en": "The deportation is recorded."},
        "desk.done.ban": {"id": "Penangkalan tercatat.", "en": "The re-entry ban is recorded."},
        "desk.f.number": {"id": "Nomor izin", "en": "Permit number"},
        "desk.f.type": {"id": "Jenis izin", "en": "Permit type"},
        "desk.f.purpose": {"id": "Tujuan (untuk ITAS/ITAP)", "en": "Purpose (for an ITAS or ITAP)"},
        "desk.f.issued_on": {"id": "Tanggal terbit", "en": "Issued on"},
        "desk.f.expires_on": {"id": "Berlaku sampai", "en": "Valid until"},
        "desk.f.reason": {"id": "Alasan", "en": "Reason"},
        "desk.f.amount_idr": {"id": "Jumlah dibayar (rupiah)", "en": "Amount paid (rupiah)"},
        "desk.f.receipt_number": {"id": "Nomor bukti bayar (PNBP)", "en": "Receipt number (PNBP)"},
        "desk.f.paid_on": {"id": "Tanggal bayar", "en": "Paid on"},
        "desk.f.departed_on": {"id": "Tanggal keberangkatan", "en": "Departed on"},
        "desk.f.action": {"id": "Tindakan", "en": "Action"},
        "desk.f.on": {"id": "Tanggal", "en": "On"},
        "desk.f.reference": {"id": "Nomor keputusan", "en": "Decision number"},
        "desk.f.deported_on": {"id": "Tanggal deportasi", "en": "Deported on"},
        "desk.f.since": {"id": "Berlaku sejak", "en": "From"},
        "desk.f.until": {"id": "Berlaku sampai", "en": "Until"},
        "choice.visit": {"id": "ITK (izin tinggal kunjungan)", "en": "ITK (visit stay permit)"},
        "choice.itas": {"id": "ITAS (izin tinggal terbatas)", "en": "ITAS (limited stay permit)"},
        "choice.itap": {"id": "ITAP (izin tinggal tetap)", "en": "ITAP (permanent stay permit)"},
        "choice.diplomatic": {"id": "Izin tinggal diplomatik", "en": "Diplomatic stay permit"},
        "choice.service": {"id": "Izin tinggal dinas", "en": "Service stay permit"},
        "choice.work": {"id": "Bekerja", "en": "Work"},
        "choice.investment": {"id": "Investasi", "en": "Investment"},
        "choice.family": {"id": "Keluarga", "en": "Family"},
        "choice.study": {"id": "Belajar", "en": "Study"},
        "choice.retirement": {"id": "Lanjut usia (pensiun)", "en": "Retirement"},
        "choice.other": {"id": "Lainnya", "en": "Other"},
        "choice.deportation-order": {"id": "Keputusan pendeportasian", "en": "Deportation order"},
        "choice.detention": {"id": "Pendetensian", "en": "Detention"},
        "choice.detention-ended": {"id": "Akhir pendetensian", "en": "End of detention"},
    }
)

# The operator's pages: the agencies' channels, deliveries, dead letters, the audit log, replays.
_more(
    {
        "nav.operations": {"id": "Saluran instansi", "en": "Agencies' channels"},
        "ops.title": {"id": "Saluran pemberitahuan instansi", "en": "The agencies' notice channels"},
        "ops.channels": {"id": "Kesehatan saluran per instansi", "en": "Each agency's channel health"},
        "ops.agency": {"id": "Instansi", "en": "Agency"},
        "ops.channel_list": {"id": "Saluran", "en": "Channels"},
        "ops.in_register": {"id": "Dalam register", "en": "In the register"},
        "ops.controller": {"id": "Pengendali data wilayahnya", "en": "Controller of its area's data"},
        "ops.agreement": {"id": "Perjanjian", "en": "Agreement"},
        "ops.no_agreement": {"id": "Tanpa perjanjian: tidak menerima data", "en": "No agreement: receives no data"},
        "ops.until_day": {"id": "berlaku sampai", "en": "valid until"},
        "ops.webhook": {"id": "Webhook", "en": "Webhook"},
        "ops.ok": {"id": "Baik", "en": "Working"},
        "ops.disabled": {"id": "Dimatikan", "en": "Disabled"},
        "ops.failing": {"id": "Gagal sejak", "en": "Failing since"},
        "ops.last_delivered": {"id": "Terakhir terkirim", "en": "Last delivered"},
        "ops.waiting": {"id": "Menunggu", "en": "Waiting"},
        "ops.never": {"id": "belum pernah", "en": "never"},
        "ops.dead": {"id": "Gagal total", "en": "Given up"},
        "ops.deliveries": {"id": "Pengiriman dan percobaannya", "en": "Deliveries and their attempts"},
        "ops.dead_deliveries": {"id": "Pengiriman yang gagal total", "en": "Deliveries given up on"},
        "ops.audit": {"id": "Log audit admin", "en": "Admin audit log"},
        "ops.audit_hint": {
            "id": "Setiap tindakan operator: siapa, kapan, apa yang diubah (rahasia disamarkan). Tidak dapat diubah.",
            "en": "Every operator action: who, when, what it changed (secrets masked). It cannot be changed.",
        },
        "ops.older": {"id": "Lebih lama", "en": "Older"},
        "ops.show": {"id": "Lihat", "en": "Show"},
        "ops.action": {"id": "Tindakan", "en": "Action"},
        "ops.target": {"id": "Sasaran", "en": "Target"},
        "ops.change": {"id": "Sebelum → sesudah", "en": "Before → after"},
        "ops.status": {"id": "Status", "en": "Status"},
        "ops.status.gathering": {"id": "Dikumpulkan", "en": "Gathering"},
        "ops.status.grouped": {"id": "Digabung", "en": "Grouped"},
        "ops.status.pending": {"id": "Menunggu", "en": "Pending"},
        "ops.status.delivered": {"id": "Terkirim", "en": "Delivered"},
        "ops.status.dead": {"id": "Gagal total", "en": "Given up"},
        "ops.status.held": {"id": "Ditahan (webhook dimatikan)", "en": "Held (webhook disabled)"},
        "ops.status.cancelled": {"id": "Dibatalkan", "en": "Cancelled"},
        "ops.latest": {"id": "{count} pengiriman terbaru.", "en": "The latest {count} deliveries."},
        "ops.created": {"id": "Dibuat", "en": "Created"},
        "ops.channel": {"id": "Saluran", "en": "Channel"},
        "ops.attempts": {"id": "Percobaan", "en": "Attempts"},
        "ops.last": {"id": "Hasil terakhir", "en": "Last outcome"},
        "ops.dead_letters": {
            "id": "Rekaman yang tidak dapat diproses (terbaru)",
            "en": "Records that could not be processed (latest)",
        },
        "ops.failed_at": {"id": "Waktu", "en": "When"},
        "ops.letters_unread": {
            "id": "Rekaman ini tidak dapat dibaca sekarang (Kafka tidak menjawab); bagian lain halaman ini tetap "
            "berlaku.",
            "en": "These records cannot be read now (Kafka does not answer); the rest of this page stands.",
        },
        "ops.consumer": {"id": "Bagian", "en": "Consumer"},
        "ops.event_type": {"id": "Jenis peristiwa", "en": "Event type"},
        "ops.reason": {"id": "Sebab", "en": "Reason"},
        "ops.replay": {"id": "Kirim ulang pemberitahuan", "en": "Send notices again"},
        "ops.replay_hint": {
            "id": "Pemberitahuan satu instansi dalam rentang waktu (WIB, paling lama 31 hari) dikirim lagi dengan ID "
            "yang sama: penerimanya membuang yang sudah ia punya. Dicatat atas nama Anda.",
            "en": "One agency's notices of a time range (WIB, at most 31 days) are sent again with the same ids: its "
            "receiver drops what it already has. Recorded under your name.",
        },
        "ops.since": {"id": "Sejak", "en": "From"},
        "ops.until": {"id": "Sampai", "en": "Until"},
        "ops.replay_send": {"id": "Kirim ulang", "en": "Send again"},
        "ops.replayed": {
            "id": "{count} pemberitahuan dijadwalkan untuk dikirim ulang.",
            "en": "{count} notices are queued to be sent again.",
        },
        "ops.problem.agency": {"id": "Pilih instansi dari daftar.", "en": "Choose an agency of the list."},
        "ops.problem.moment": {"id": "Isi tanggal dan jam.", "en": "Give a date and time."},
        "ops.problem.until": {"id": "Harus sesudah waktu mulai.", "en": "Must be after the start."},
        "ops.problem.range": {"id": "Paling lama 31 hari.", "en": "At most 31 days."},
        "ops.problem.channel": {"id": "Pilih saluran dari daftar.", "en": "Choose a channel of the list."},
    }
)

# The disclosure record page: finding a person by passport, days, the CSV, older pages.
_more(
    {
        "privacy.passport_number": {"id": "Nomor paspor", "en": "Passport number"},
        "privacy.since": {"id": "Sejak tanggal", "en": "From"},
        "privacy.until": {"id": "Sampai tanggal", "en": "Until"},
        "privacy.problem.passport_number": {
            "id": "Nomor paspor terdiri dari huruf dan angka saja (paling banyak 20).",
            "en": "A passport number is letters and digits only (at most 20).",
        },
        "privacy.problem.no_passport": {
            "id": "Tidak ada orang asing di wilayah kantor Anda dengan nomor paspor ini.",
            "en": "No foreigner of your office's area has this passport number.",
        },
        "privacy.problem.since": {"id": "Isi tanggal yang benar.", "en": "Give a real date."},
        "privacy.problem.until": {
            "id": "Tanggal akhir tidak boleh sebelum tanggal awal.",
            "en": "The last day cannot be before the first.",
        },
        "privacy.choose": {
            "id": "Beberapa orang memakai nomor paspor ini: pilih satu.",
            "en": "Several people have this passport number: choose one.",
        },
        "privacy.download": {"id": "Unduh semuanya sebagai CSV", "en": "Download all of it as CSV"},
        "privacy.whose": {"id": "Catatan tentang", "en": "The record of"},
        "privacy.problem.one_person": {
            "id": "Isi ID orang asing atau nomor paspor, salah satu saja.",
            "en": "Give the foreigner id or the passport number, not both.",
        },
        "privacy.csv_too_many": {
            "id": "Terlalu banyak entri untuk satu CSV (lebih dari 10.000): persempit dengan tanggal, lalu unduh lagi.",
            "en": "Too many entries for one CSV (over 10,000): narrow by days, then download again.",
        },
        "privacy.older": {"id": "Entri yang lebih lama", "en": "Older entries"},
    }
)

# What each change of a person's record is called in its history (every event type of the registry has one).
_more(
    {
        "event.foreigner.arrived": {"id": "Kedatangan", "en": "Arrival"},
        "event.foreigner.updated": {"id": "Perubahan data", "en": "Details changed"},
        "event.foreigner.imported": {"id": "Dimuat dari sistem lama", "en": "Imported from an earlier system"},
        "event.foreigner.residence-reported": {"id": "Lapor tempat tinggal", "en": "Residence reported"},
        "event.foreigner.stay-reported": {"id": "Lapor penginapan", "en": "Stay reported"},
        "event.foreigner.stay-overdue": {"id": "Penginapan lewat waktu", "en": "Stay overdue"},
        "event.foreigner.departed": {"id": "Keberangkatan", "en": "Departure"},
        "event.permit.issued": {"id": "Izin tinggal diterbitkan", "en": "Stay permit issued"},
        "event.permit.extended": {"id": "Izin tinggal diperpanjang", "en": "Stay permit extended"},
        "event.permit.converted": {"id": "Alih status izin tinggal", "en": "Stay permit converted"},
        "event.permit.reentry-granted": {"id": "Izin masuk kembali (ERP)", "en": "Re-entry permit granted"},
        "event.permit.exit-permit-issued": {"id": "Izin keluar tidak kembali (EPO)", "en": "Exit permit issued"},
        "event.permit.revoked": {"id": "Izin tinggal dicabut", "en": "Stay permit revoked"},
        "event.permit.expiring": {"id": "Izin segera berakhir", "en": "Permit expiring"},
        "event.permit.expired": {"id": "Izin berakhir (overstay)", "en": "Permit expired (overstay)"},
        "event.permit.overstay-exceeded": {"id": "Overstay lebih dari 60 hari", "en": "Overstay past 60 days"},
        "event.permit.overstay-fee-paid": {"id": "Denda overstay dibayar", "en": "Overstay fee paid"},
        "event.foreigner.enforcement-recorded": {"id": "Tindakan administratif", "en": "Administrative action"},
        "event.foreigner.deported": {"id": "Deportasi", "en": "Deported"},
        "event.foreigner.banned": {"id": "Penangkalan", "en": "Re-entry ban"},
    }
)

MONTHS: dict[Language, tuple[str, ...]] = {
    "id": (
        "Januari", "Februari", "Maret", "April", "Mei", "Juni",
        "Juli", "Agustus", "September", "Oktober", "November", "Desember",
    ),
    "en": (
        "January", "February", "March", "April", "May", "June",
        "July", "August", "September", "October", "November", "December",
    ),
}  # fmt: skip


def label(field: str, language: Language) -> str:
    known = FIELD_LABELS.get(field)
    return field if known is None else known[language]
